/// The parts of a `scheme://[userinfo@]host[:port][/path][?query][#fragment]` URL that the
/// configuration checks, and masking of the secrets it may carry.
struct ServiceURL {
    var scheme: String
    var userinfo: String?
    var host: String
    var port: Int?
    /// Everything after the authority, starting with `/`, `?` or `#` (or empty).
    var rest: String

    init?(_ text: String) {
        guard let separator = text.range(of: "://") else { return nil }
        let scheme = String(text[..<separator.lowerBound])
        guard let first = scheme.first, first.isASCII, first.isLetter,
            scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
        else { return nil }
        self.scheme = scheme.lowercased()
        let afterScheme = text[separator.upperBound...]
        let authorityEnd = afterScheme.firstIndex { "/?#".contains($0) } ?? afterScheme.endIndex
        var authority = afterScheme[..<authorityEnd]
        rest = String(afterScheme[authorityEnd...])
        if let at = authority.lastIndex(of: "@") {
            userinfo = String(authority[..<at])
            authority = authority[authority.index(after: at)...]
        }
        var hostPart = authority
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        host = String(hostPart)
        guard !host.contains(where: { $0 == " " || $0 == "\t" }) else { return nil }
        if let portText {
            guard let port = Int(portText), (1...65535).contains(port) else { return nil }
            self.port = port
        }
    }

    /// `text` with the password of its userinfo (and, for `redis` URLs, a lone userinfo, which Redis
    /// clients read as a password) and the values of secret-looking query parameters replaced by `***`.
    /// Text that is not a URL is returned unchanged.
    static func masked(_ text: String) -> String {
        guard let separator = text.range(of: "://") else { return text }
        let afterScheme = text[separator.upperBound...]
        let authorityEnd = afterScheme.firstIndex { "/?#".contains($0) } ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        var output = String(text[..<separator.upperBound])
        if let at = authority.lastIndex(of: "@") {
            let userinfo = authority[..<at]
            if let colon = userinfo.firstIndex(of: ":") {
                output += userinfo[...colon] + "***"
            } else if text[..<separator.lowerBound].lowercased().hasPrefix("redis") {
                output += "***"
            } else {
                output += userinfo
            }
            output += authority[at...]
        } else {
            output += authority
        }
        var rest = String(afterScheme[authorityEnd...])
        if let question = rest.firstIndex(of: "?") {
            let fragmentStart = rest[question...].firstIndex(of: "#") ?? rest.endIndex
            let query = rest[rest.index(after: question)..<fragmentStart]
            let parameters = query.split(separator: "&", omittingEmptySubsequences: false).map { parameter -> String in
                guard let equals = parameter.firstIndex(of: "=") else { return String(parameter) }
                let name = parameter[..<equals]
                return SecretNames.isSecret(String(name)) ? name + "=***" : String(parameter)
            }
            rest = rest[...question] + parameters.joined(separator: "&") + rest[fragmentStart...]
        }
        return output + rest
    }
}

/// Which keys hold secrets: any whose name contains `password`, `passwd`, `secret`, `token` or `key`.
enum SecretNames {
    static func isSecret(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return ["password", "passwd", "secret", "token", "key"].contains { lowered.contains($0) }
    }
}
