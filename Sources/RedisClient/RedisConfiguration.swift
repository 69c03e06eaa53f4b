import Foundation

/// Where and how to reach one Redis server.
///
/// Build it from fields or from a URL with ``init(url:)``. The password never appears in
/// ``description``, ``redactedURL``, a mirror (`dump`) or an error: log ``redactedURL``.
public struct RedisConfiguration: Sendable, Equatable {
    /// Host name or IP address of the server (ignored when ``unixSocketPath`` is set). Default `127.0.0.1`.
    public var host: String
    /// TCP port of the server (ignored when ``unixSocketPath`` is set). Default `6379`.
    public var port: Int
    /// The logical database to `SELECT` after connecting. Default `0` (no `SELECT` is sent).
    public var database: Int
    /// The ACL user for `AUTH` (Redis 6+). `nil` authenticates as the default user.
    public var username: String?
    /// The password for `AUTH`. `nil` sends no `AUTH` at all (a username without a password is ignored).
    public var password: String?
    /// Seconds to wait for the TCP (or Unix socket) connection to be established. Default 2.
    public var connectTimeout: Double
    /// Read and write timeout on the socket, in seconds. Default 10. Zero or less means no timeout.
    ///
    /// A reply that takes longer breaks the connection. A connection used for a blocking command
    /// (`XREADGROUP ... BLOCK n`, `BLPOP key n`) must have a socket timeout longer than the block time.
    public var socketTimeout: Double
    /// Path of a Unix domain socket to connect to instead of `host:port` (from a `unix://` URL).
    public var unixSocketPath: String?

    /// A configuration for `host:port`, database `database`, optionally authenticated.
    ///
    /// `connectTimeout` starts at 2 s and `socketTimeout` at 10 s; change them afterwards if needed.
    public init(host: String = "127.0.0.1", port: Int = 6379, database: Int = 0, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.connectTimeout = 2
        self.socketTimeout = 10
        self.unixSocketPath = nil
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    ///
    /// Also understood: `unix://[[user]:password@]/path/to/redis.sock[?db=N]`, and `?db=N` on a
    /// `redis://` URL that has no `/db` path. User and password may be %-encoded. `rediss://` is
    /// refused because TLS is not supported. Errors describe the problem with the password redacted.
    public init(url: String) throws(RedisError) {
        self.init()
        let raw = url.trimmingCharacters(in: .whitespaces)
        let shown = RedisConfiguration.redact(raw)
        func fail(_ why: String) -> RedisError {
            .invalidURL("The Redis URL \"\(shown)\" is not valid: \(why).")
        }

        guard let schemeEnd = raw.range(of: "://") else {
            throw fail("it must start with redis:// (for example redis://127.0.0.1:6379/0)")
        }
        let scheme = raw[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(raw[schemeEnd.upperBound...])
        let isUnix: Bool
        switch scheme {
        case "redis": isUnix = false
        case "unix": isUnix = true
        case "rediss":
            throw RedisError.invalidURL(
                "The Redis URL \"\(shown)\" uses rediss://, but TLS is not supported; use redis:// on a trusted network, or a TLS tunnel such as stunnel."
            )
        default:
            throw fail("the scheme \"\(scheme)\" is not supported; use redis:// or unix://")
        }

        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var queryDatabase: Int?
        if let question = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: question)...]
            rest = rest[..<question]
            for item in query.split(separator: "&") where !item.isEmpty {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = String(parts[0])
                let value = parts.count > 1 ? String(parts[1]) : ""
                guard key == "db" else {
                    throw fail("the parameter \"\(key)\" is not understood; only ?db=N is")
                }
                guard let n = Int(value), n >= 0 else {
                    throw fail("the database \"\(value)\" must be a whole number, 0 or more")
                }
                queryDatabase = n
            }
        }

        // User information ends at the last "@" (an unencoded "@" in a password is tolerated).
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            guard let colon = userInfo.firstIndex(of: ":") else {
                throw fail("the part before \"@\" has no \":\"; write redis://:PASSWORD@host or redis://USER:PASSWORD@host")
            }
            guard let user = String(userInfo[..<colon]).removingPercentEncoding,
                let password = String(userInfo[userInfo.index(after: colon)...]).removingPercentEncoding
            else {
                throw fail("the user or password contains a malformed %-escape")
            }
            self.username = user.isEmpty ? nil : user
            self.password = password
        }

        if isUnix {
            guard rest.hasPrefix("/"), rest.count > 1 else {
                throw fail("a unix:// URL needs an absolute socket path, for example unix:///run/redis/redis.sock")
            }
            self.unixSocketPath = String(rest).removingPercentEncoding ?? String(rest)
            self.database = queryDatabase ?? 0
        } else {
            var authority = rest
            var path: Substring = ""
            if let slash = rest.firstIndex(of: "/") {
                authority = rest[..<slash]
                path = rest[rest.index(after: slash)...]
            }
            var hostPart = authority
            var portPart: Substring?
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else {
                    throw fail("the IPv6 address has no closing \"]\"")
                }
                hostPart = authority[authority.index(after: authority.startIndex)..<close]
                let after = authority[authority.index(after: close)...]
                if !after.isEmpty {
                    guard after.hasPrefix(":") else { throw fail("unexpected text after the IPv6 address") }
                    portPart = after.dropFirst()
                }
            } else if let colon = authority.lastIndex(of: ":") {
                hostPart = authority[..<colon]
                portPart = authority[authority.index(after: colon)...]
            }
            if hostPart.contains(where: { $0.isWhitespace || $0 == "%" }) {
                throw fail("the host \"\(hostPart)\" contains characters a host name cannot have")
            }
            if !hostPart.isEmpty { self.host = String(hostPart) }
            if let portPart {
                guard let p = Int(portPart), (1...65535).contains(p) else {
                    throw fail("the port \"\(portPart)\" must be a number from 1 to 65535")
                }
                self.port = p
            }
            if !path.isEmpty {
                guard let n = Int(path), n >= 0 else {
                    throw fail("the path \"/\(path)\" must be a database number such as /0")
                }
                self.database = n
            } else if let queryDatabase {
                self.database = queryDatabase
            }
        }
    }

    /// The URL with any password replaced by `***`, for logs.
    public var redactedURL: String {
        // A username without a password is not used (no AUTH is sent), so it is not shown either.
        let userInfo = password == nil ? "" : "\(username.map(Self.encodeUser) ?? ""):***@"
        if let unixSocketPath {
            return "unix://\(userInfo)\(unixSocketPath)" + (database != 0 ? "?db=\(database)" : "")
        }
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "redis://\(userInfo)\(shownHost):\(port)/\(database)"
    }

    /// `host:port`, or `unix:<path>`: how errors name the server.
    public var address: String {
        if let unixSocketPath { return "unix:\(unixSocketPath)" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    private static func encodeUser(_ user: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return user.addingPercentEncoding(withAllowedCharacters: allowed) ?? user
    }

    /// Best-effort redaction of a raw URL string that may not parse: whatever lies between the
    /// first ":" of the user information and the last "@" becomes `***`.
    static func redact(_ raw: String) -> String {
        guard let schemeEnd = raw.range(of: "://") else {
            // Not a URL at all; it may still be a bare secret, so show only its shape.
            return raw.contains("@") ? "<unparseable URL with credentials>" : raw
        }
        let afterScheme = raw[schemeEnd.upperBound...]
        guard let at = afterScheme.lastIndex(of: "@") else { return raw }
        let userInfo = afterScheme[..<at]
        let prefix = raw[..<schemeEnd.upperBound]
        let tail = afterScheme[at...]
        if let colon = userInfo.firstIndex(of: ":") {
            return prefix + userInfo[..<colon] + ":***" + tail
        }
        // No colon: the text could be a password written without one; hide it as well.
        return prefix + "***" + tail
    }
}

extension RedisConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The ``redactedURL``, so that printing a configuration never shows the password.
    public var description: String { redactedURL }
    /// The ``redactedURL`` and timeouts; never the password.
    public var debugDescription: String {
        "RedisConfiguration(\(redactedURL), connectTimeout: \(connectTimeout)s, socketTimeout: \(socketTimeout)s)"
    }
    /// A mirror without the password, so `dump(configuration)` cannot leak it.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "url": redactedURL as Any,
                "connectTimeout": connectTimeout as Any,
                "socketTimeout": socketTimeout as Any,
            ])
    }
}
