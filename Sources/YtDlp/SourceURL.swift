/// A link to download from, checked and put in canonical form before anything touches the network.
///
/// Rules (contract section 7): `http` and `https` only; no user name or password; the host is one of
/// YouTube's (`youtube.com` with `www.`, `m.`, `music.`, `youtu.be`, `youtube-nocookie.com`) or in
/// the allowed list (exact names, compared without case). YouTube links become
/// `https://www.youtube.com/watch?v=<id>` or `https://www.youtube.com/playlist?list=<id>`: the short
/// forms (`youtu.be/<id>`, `/shorts/<id>`, `/live/<id>`, `/embed/<id>`) are unfolded and every other
/// parameter (`t=`, `si=`, `feature=`, `pp=`, `utm_*`, ...) is dropped. A watch link that names both
/// a video and a playlist stands for the video. Other links keep their path and query minus common
/// tracking parameters; their fragment is dropped (it never reaches the server).
public struct SourceURL: Sendable, Equatable {
    /// What the link points at.
    public enum Kind: Sendable, Equatable {
        /// One YouTube video, by its 11-character id.
        case video(id: String)
        /// A YouTube playlist, by its id.
        case playlist(id: String)
        /// A page on an allowed host: yt-dlp finds out what is there.
        case page
    }

    /// The canonical link, as given to yt-dlp.
    public var url: String
    /// The host, lower case, without brackets or port.
    public var host: String
    public var kind: Kind

    /// The hosts that are YouTube's.
    public static let youTubeHosts: Set<String> = [
        "youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com",
        "youtu.be", "www.youtu.be", "youtube-nocookie.com", "www.youtube-nocookie.com",
    ]

    /// Query parameters dropped from links on other hosts.
    static let trackingParameters: Set<String> = ["fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid"]

    /// Longest link accepted, in bytes.
    public static let maxLength = 8192

    /// Whether the link is YouTube's.
    public var isYouTube: Bool { Self.youTubeHosts.contains(host) }

    /// Checks and normalises `text`.
    ///
    /// - Parameters:
    ///   - allowedHosts: hosts allowed besides YouTube's (`youtube.allowed_hosts`).
    ///   - keepSmuggledFragment: keep a `#__youtubedl_smuggle=` fragment, which yt-dlp itself puts on
    ///     playlist entries (only for links that came out of yt-dlp, never for a user's link).
    /// - Throws: `YtDlpError.invalidURL` or `.hostNotAllowed`, with a sentence that says what is wrong.
    public static func parse(_ text: String, allowedHosts: [String], keepSmuggledFragment: Bool = false) throws(YtDlpError) -> SourceURL {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { throw .invalidURL("The link is empty; give the address of a video or a playlist.") }
        let shown = shorten(trimmed)
        guard trimmed.utf8.count <= maxLength else { throw .invalidURL("The link is longer than \(maxLength) bytes.") }
        if trimmed.hasPrefix("-") {
            throw .invalidURL("'\(shown)' is not a link: links start with http:// or https://.")
        }
        if trimmed.unicodeScalars.contains(where: { $0.value <= 0x20 || (0x7F...0x9F).contains($0.value) }) {
            throw .invalidURL("The link contains spaces or control characters; copy it again from the address bar.")
        }
        guard let colon = trimmed.firstIndex(of: ":") else {
            throw .invalidURL("'\(shown)' is not a link: links start with http:// or https://.")
        }
        let scheme = trimmed[..<colon].lowercased()
        guard scheme.first?.isLetter == true, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+.-".contains($0) }) else {
            throw .invalidURL("'\(shown)' is not a link: links start with http:// or https://.")
        }
        guard scheme == "http" || scheme == "https" else {
            throw .invalidURL("Only http:// and https:// links can be downloaded, not \(scheme): links.")
        }
        let rest = trimmed[trimmed.index(after: colon)...]
        guard rest.hasPrefix("//") else { throw .invalidURL("'\(shown)' is not a complete link (expected \(scheme)://host/...).") }
        let afterSlashes = rest.dropFirst(2)
        let authorityEnd = afterSlashes.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? afterSlashes.endIndex
        let authority = afterSlashes[..<authorityEnd]
        var remainder = afterSlashes[authorityEnd...]
        if authority.contains("@") {
            throw .invalidURL("Links with a user name or password are not accepted; remove the part before '@'.")
        }
        let (host, port) = try splitAuthority(String(authority), shown: shown)

        var fragment: Substring = ""
        if let hash = remainder.firstIndex(of: "#") {
            fragment = remainder[remainder.index(after: hash)...]
            remainder = remainder[..<hash]
        }
        var query: Substring = ""
        if let mark = remainder.firstIndex(of: "?") {
            query = remainder[remainder.index(after: mark)...]
            remainder = remainder[..<mark]
        }
        let path = remainder.isEmpty ? "/" : String(remainder)

        if youTubeHosts.contains(host) {
            return try youTube(host: host, path: path, query: parseQuery(query), shown: shown)
        }
        let allowed = Set(allowedHosts.map { normaliseHost($0) })
        guard allowed.contains(host) else { throw .hostNotAllowed(host: host) }

        var canonical = scheme + "://" + (host.contains(":") ? "[\(host)]" : host)
        if let port { canonical += ":\(port)" }
        canonical += path
        let kept = query.split(separator: "&", omittingEmptySubsequences: true).filter { pair in
            let name = (pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? "").lowercased()
            return !name.hasPrefix("utm_") && !trackingParameters.contains(name)
        }
        if !kept.isEmpty { canonical += "?" + kept.joined(separator: "&") }
        if keepSmuggledFragment && fragment.hasPrefix("__youtubedl_smuggle=") { canonical += "#" + fragment }
        return SourceURL(url: canonical, host: host, kind: .page)
    }

    // MARK: YouTube

    private static func youTube(host: String, path: String, query: [(String, String)], shown: String) throws(YtDlpError) -> SourceURL {
        func value(_ name: String) -> String? { query.first { $0.0 == name }?.1 }
        let segments = path.split(separator: "/").map(String.init)
        var videoID: String?
        var listID: String?
        if host.hasSuffix("youtu.be") {
            videoID = segments.first
            if videoID == nil { throw .invalidURL("This youtu.be link names no video.") }
        } else if let first = segments.first {
            switch first {
            case "watch":
                videoID = value("v")
                listID = value("list")
            case "playlist":
                listID = value("list")
            case "shorts", "live", "embed", "v", "e":
                guard segments.count >= 2 else { throw .invalidURL("This YouTube link names no video.") }
                videoID = segments[1]
            default:
                throw .invalidURL("This YouTube link is neither a video nor a playlist; channel, search and other pages are not supported.")
            }
        } else {
            throw .invalidURL("This YouTube link is neither a video nor a playlist; link a video or a playlist.")
        }
        if let videoID {
            guard isVideoID(videoID) else {
                throw .invalidURL("'\(shorten(videoID))' is not a YouTube video id (11 letters, digits, - or _).")
            }
            return SourceURL(url: "https://www.youtube.com/watch?v=\(videoID)", host: host, kind: .video(id: videoID))
        }
        if let listID {
            guard isPlaylistID(listID) else {
                throw .invalidURL("'\(shorten(listID))' is not a YouTube playlist id.")
            }
            return SourceURL(url: "https://www.youtube.com/playlist?list=\(listID)", host: host, kind: .playlist(id: listID))
        }
        throw .invalidURL("This YouTube link names neither a video (v=) nor a playlist (list=).")
    }

    /// 11 characters of `[A-Za-z0-9_-]`.
    public static func isVideoID(_ s: String) -> Bool {
        s.utf8.count == 11 && s.utf8.allSatisfy(isIDByte)
    }

    /// 2 to 64 characters of `[A-Za-z0-9_-]` (`PL…`, `UU…`, `OLAK5uy_…`, `RD…`).
    public static func isPlaylistID(_ s: String) -> Bool {
        (2...64).contains(s.utf8.count) && s.utf8.allSatisfy(isIDByte)
    }

    private static func isIDByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
    }

    // MARK: pieces

    private static func splitAuthority(_ authority: String, shown: String) throws(YtDlpError) -> (String, Int?) {
        var hostPart = Substring(authority)
        var portText: Substring?
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { throw .invalidURL("'\(shown)' has a malformed IPv6 host.") }
            let after = hostPart[hostPart.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw .invalidURL("'\(shown)' has a malformed host.")
            }
            hostPart = hostPart[hostPart.index(after: hostPart.startIndex)..<close]
        } else if let colon = hostPart.lastIndex(of: ":") {
            portText = hostPart[hostPart.index(after: colon)...]
            hostPart = hostPart[..<colon]
        }
        var port: Int?
        if let portText, !portText.isEmpty {
            guard portText.count <= 5, portText.allSatisfy(\.isASCII), let p = Int(portText), (1...65535).contains(p) else {
                throw .invalidURL("'\(shown)' has an invalid port.")
            }
            port = p
        }
        let host = normaliseHost(String(hostPart))
        guard !host.isEmpty else { throw .invalidURL("'\(shown)' names no host.") }
        guard !host.contains("%"), !host.contains("\\"), !host.hasPrefix("."), !host.hasPrefix("-") else {
            throw .invalidURL("'\(shown)' has an invalid host name.")
        }
        return (host, port)
    }

    /// Lower case, brackets and one trailing dot removed.
    static func normaliseHost(_ host: String) -> String {
        var h = host.trimmingWhitespace().lowercased()
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.hasSuffix(".") { h.removeLast() }
        return h
    }

    /// `name=value` pairs, percent-decoded (`+` as space), in order.
    static func parseQuery(_ query: Substring) -> [(String, String)] {
        query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecode(parts[0])
            let value = parts.count > 1 ? percentDecode(parts[1]) : ""
            return (name, value)
        }
    }

    static func percentDecode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(s.utf8)[...]
        while let b = utf8.popFirst() {
            if b == UInt8(ascii: "+") { bytes.append(0x20); continue }
            if b == UInt8(ascii: "%"), utf8.count >= 2,
                let v = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(v)
                utf8 = utf8.dropFirst(2)
                continue
            }
            bytes.append(b)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// At most 80 characters of `s`, for messages.
    static func shorten(_ s: String) -> String {
        s.count <= 80 ? s : String(s.prefix(79)) + "…"
    }
}

extension StringProtocol {
    /// The string without leading and trailing white space (Unicode white space and newlines).
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
