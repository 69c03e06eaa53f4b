import Foundation

/// Where and how to connect to PostgreSQL.
///
/// Usually made from a URL:
///
///     postgres://[user[:password]@]host[:port]/database[?sslmode=...&application_name=...]
///
/// (`postgresql://` is accepted too). User, password, host and database may be
/// percent-encoded; a host that decodes to an absolute path (`%2Frun%2Fpostgresql`) is a
/// Unix-socket directory. Besides `sslmode`, `application_name` and `connect_timeout`,
/// the query may carry these libpq parameters, passed through unchanged: `options`,
/// `target_session_attrs`, `keepalives`, `keepalives_idle`, `keepalives_interval`,
/// `keepalives_count`, `tcp_user_timeout`, `sslrootcert`, `sslcert`, `sslkey`, `sslcrl`,
/// `gssencmode`, `channel_binding`, `passfile`, `hostaddr`; and `host`, `port`, `user`,
/// `password`, `dbname`, which override the URL's parts. Any other parameter is refused,
/// so a typo does not pass silently.
///
/// The password is never part of `description`, `debugDescription`, `redactedURL`,
/// `dump()` output or any error.
public struct PostgresConfiguration: Sendable, Equatable {
    /// Host name, IP address, or (when it starts with `/`) a Unix-socket directory.
    public var host: String
    /// TCP port (also used to name the Unix socket), default 5432.
    public var port: Int
    /// Role name; `nil` lets libpq use its default (the operating-system user).
    public var user: String?
    /// Password, if any. Never printed: see the type's documentation.
    public var password: String?
    /// Database name.
    public var database: String
    /// libpq `sslmode` (`disable`, `allow`, `prefer`, `require`, `verify-ca`,
    /// `verify-full`); `nil` leaves libpq's default (`prefer`).
    public var sslMode: String?
    /// Seconds to wait for a connection to be made, default 5 (`0` waits forever;
    /// libpq treats 1 as 2).
    public var connectTimeout: Int
    /// Reported to the server as `application_name`, default `"medianest-worker"`.
    public var applicationName: String
    /// Further libpq connection parameters from the URL's query (see the type's
    /// documentation for the accepted names), passed to libpq unchanged.
    public var extraParameters: [String: String]
    /// The session's `TimeZone`, sent at connect as `options=-c TimeZone=…` (after any `options`
    /// of the URL); default `"UTC"`, so `now()` written into a `timestamp` column without a time
    /// zone is UTC whatever the server's setting. nil leaves the server's setting.
    public var timeZone: String? = "UTC"

    /// The default `applicationName`.
    public static let defaultApplicationName = "medianest-worker"
    /// The default `connectTimeout`, in seconds.
    public static let defaultConnectTimeout = 5

    static let sslModes: Set<String> = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
    static let passThroughParameters: Set<String> = [
        "options", "target_session_attrs", "keepalives", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "sslrootcert", "sslcert", "sslkey", "sslcrl",
        "gssencmode", "channel_binding", "passfile", "hostaddr",
    ]

    /// Makes a configuration from its parts.
    public init(
        host: String, port: Int = 5432, user: String? = nil, password: String? = nil,
        database: String, sslMode: String? = nil
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.sslMode = sslMode
        self.connectTimeout = Self.defaultConnectTimeout
        self.applicationName = Self.defaultApplicationName
        self.extraParameters = [:]
    }

    /// Parses a `postgres://` or `postgresql://` URL (see the type's documentation).
    ///
    /// - Throws: `PostgresError.invalidURL` naming what is wrong. The message never
    ///   repeats any part of the URL that could be the password.
    public init(url: String) throws(PostgresError) {
        self = try URLParser(url).parse()
    }

    /// The URL with the password replaced by `***`, for logs and messages.
    /// Always shows the port; shows query parameters that differ from the defaults.
    public var redactedURL: String {
        var text = "postgres://"
        if let user {
            text += Self.percentEncode(user)
            if password != nil { text += ":***" }
            text += "@"
        } else if password != nil {
            text += ":***@"
        }
        text += hostForURL + ":\(port)/" + Self.percentEncode(database)
        var query: [String] = []
        if let sslMode { query.append("sslmode=" + Self.percentEncode(sslMode)) }
        if applicationName != Self.defaultApplicationName {
            query.append("application_name=" + Self.percentEncode(applicationName))
        }
        if connectTimeout != Self.defaultConnectTimeout { query.append("connect_timeout=\(connectTimeout)") }
        for key in extraParameters.keys.sorted() {
            query.append(key + "=" + Self.percentEncode(extraParameters[key] ?? ""))
        }
        if !query.isEmpty { text += "?" + query.joined(separator: "&") }
        return text
    }

    /// `host:port` as used in error messages (`[::1]:5432` for IPv6 addresses).
    public var endpoint: String {
        (host.hasPrefix("/") ? host : hostForURL) + ":\(port)"
    }

    private var hostForURL: String {
        if host.hasPrefix("/") { return Self.percentEncode(host) }
        if host.contains(":") { return "[\(host)]" }
        return host
    }

    /// The keyword/value pairs handed to `PQconnectdbParams` (with `expand_dbname` = 0,
    /// so no value is ever interpreted as a connection string).
    var libpqParameters: [(String, String)] {
        var pairs: [(String, String)] = [
            ("host", host),
            ("port", String(port)),
            ("dbname", database),
            ("connect_timeout", String(connectTimeout)),
            ("application_name", applicationName),
            ("client_encoding", "UTF8"),
        ]
        if let user { pairs.append(("user", user)) }
        if let password { pairs.append(("password", password)) }
        if let sslMode { pairs.append(("sslmode", sslMode)) }
        var options = extraParameters
        if let timeZone {
            let setting = "-c TimeZone=" + timeZone
            options["options"] = options["options"].map { $0.isEmpty ? setting : $0 + " " + setting } ?? setting
        }
        for key in options.keys.sorted() {
            pairs.append((key, options[key] ?? ""))
        }
        return pairs
    }

    /// Removes the password from a text that came from elsewhere (libpq messages).
    func scrub(_ text: String) -> String {
        guard let password, !password.isEmpty else { return text }
        return text.replacingOccurrences(of: password, with: "***")
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%"
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0xF)]))
            }
        }
        return out
    }

    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        func hexValue(_ byte: UInt8?) -> UInt8? {
            guard let byte else { return nil }
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = hexValue(iterator.next()), let low = hexValue(iterator.next()) else { return nil }
                let decoded = high << 4 | low
                if decoded == 0 { return nil }  // NUL cannot travel in a C string
                bytes.append(decoded)
            } else {
                bytes.append(byte)
            }
        }
        return String(bytes: bytes, encoding: .utf8)
    }
}

extension PostgresConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The redacted URL.
    public var description: String { redactedURL }
    /// The redacted URL.
    public var debugDescription: String { "PostgresConfiguration(\(redactedURL))" }
    /// A mirror without the password, so `dump()` cannot print it.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host, "port": port, "user": user as Any, "password": password == nil ? "nil" : "***",
                "database": database, "sslMode": sslMode as Any, "connectTimeout": connectTimeout,
                "applicationName": applicationName, "extraParameters": extraParameters,
            ])
    }
}

/// Parses connection URLs. Kept apart so the error messages can check what they echo.
private struct URLParser {
    let url: String
    /// Everything between `://` and the last `@`: a superset of `user:password` however
    /// badly the URL is formed. No fragment of it is ever echoed in an error.
    let credentialRegion: Substring?

    init(_ url: String) {
        self.url = url
        if let schemeEnd = url.range(of: "://"), let at = url.lastIndex(of: "@"), at > schemeEnd.upperBound {
            credentialRegion = url[schemeEnd.upperBound..<at]
        } else {
            credentialRegion = nil
        }
    }

    /// `'fragment'` when it cannot be part of the password, else a neutral word.
    func quoted(_ fragment: some StringProtocol, otherwise: String = "a value") -> String {
        if let credentialRegion, !fragment.isEmpty, credentialRegion.contains(fragment) { return otherwise }
        return "'\(fragment)'"
    }

    func parse() throws(PostgresError) -> PostgresConfiguration {
        let rest: Substring
        if url.lowercased().hasPrefix("postgres://") {
            rest = url.dropFirst("postgres://".count)
        } else if url.lowercased().hasPrefix("postgresql://") {
            rest = url.dropFirst("postgresql://".count)
        } else {
            throw .invalidURL("it must start with postgres:// or postgresql://")
        }
        if url.contains("#") { throw .invalidURL("a fragment ('#') is not allowed; percent-encode '#' as %23") }
        if url.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F }) {
            throw .invalidURL("it contains spaces or control characters; percent-encode them")
        }

        // Split authority / path / query.
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var afterAuthority = rest[authorityEnd...]
        var queryText: Substring = ""
        if let question = afterAuthority.firstIndex(of: "?") {
            queryText = afterAuthority[afterAuthority.index(after: question)...]
            afterAuthority = afterAuthority[..<question]
        }
        let pathText = afterAuthority.hasPrefix("/") ? afterAuthority.dropFirst() : afterAuthority

        // Credentials.
        var user: String?
        var password: String?
        var hostPort = authority
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            let userPart: Substring
            if let colon = userInfo.firstIndex(of: ":") {
                userPart = userInfo[..<colon]
                guard let decoded = PostgresConfiguration.percentDecode(userInfo[userInfo.index(after: colon)...]) else {
                    throw .invalidURL("the password is not validly percent-encoded")
                }
                password = decoded
            } else {
                userPart = userInfo
            }
            guard let decodedUser = PostgresConfiguration.percentDecode(userPart) else {
                throw .invalidURL("the user name is not validly percent-encoded")
            }
            user = decodedUser.isEmpty ? nil : decodedUser
        }

        // Host and port.
        var host = ""
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw .invalidURL("an IPv6 address must be closed with ']'")
            }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let afterClose = hostPort[hostPort.index(after: close)...]
            if !afterClose.isEmpty {
                guard afterClose.hasPrefix(":") else { throw .invalidURL("unexpected text after the IPv6 address") }
                portText = afterClose.dropFirst()
            }
        } else {
            var hostText = hostPort
            if let colon = hostPort.lastIndex(of: ":") {
                hostText = hostPort[..<colon]
                portText = hostPort[hostPort.index(after: colon)...]
            }
            if hostText.contains(",") { throw .invalidURL("several hosts are not supported; name one host") }
            if hostText.contains(":") { throw .invalidURL("put an IPv6 address in brackets, e.g. [::1]:5432") }
            guard let decoded = PostgresConfiguration.percentDecode(hostText) else {
                throw .invalidURL("the host is not validly percent-encoded")
            }
            host = decoded
        }
        var port = 5432
        if let portText {
            guard let parsed = parsePort(portText) else {
                throw .invalidURL("the port must be a number from 1 to 65535")
            }
            port = parsed
        }

        // Database.
        guard let database = PostgresConfiguration.percentDecode(pathText) else {
            throw .invalidURL("the database name is not validly percent-encoded")
        }
        if database.contains("/") { throw .invalidURL("the path must be a single database name") }

        var configuration = PostgresConfiguration(
            host: host, port: port, user: user, password: password, database: database)

        // Query parameters.
        for item in queryText.split(separator: "&", omittingEmptySubsequences: true) {
            let key: Substring
            let rawValue: Substring
            if let equals = item.firstIndex(of: "=") {
                key = item[..<equals]
                rawValue = item[item.index(after: equals)...]
            } else {
                throw .invalidURL("query parameter \(quoted(item, otherwise: "(one of them)")) has no '=value'")
            }
            guard let value = PostgresConfiguration.percentDecode(rawValue) else {
                throw .invalidURL("the value of query parameter \(quoted(key, otherwise: "(one of them)")) is not validly percent-encoded")
            }
            switch key {
            case "sslmode":
                guard PostgresConfiguration.sslModes.contains(value) else {
                    throw .invalidURL("sslmode \(quoted(value)) is not one of disable, allow, prefer, require, verify-ca, verify-full")
                }
                configuration.sslMode = value
            case "application_name":
                configuration.applicationName = value
            case "connect_timeout":
                guard let seconds = Int(value), seconds >= 0 else {
                    throw .invalidURL("connect_timeout must be a whole number of seconds (0 or more)")
                }
                configuration.connectTimeout = seconds
            case "host":
                configuration.host = value
            case "port":
                guard let parsed = parsePort(value[...]) else {
                    throw .invalidURL("the port must be a number from 1 to 65535")
                }
                configuration.port = parsed
            case "user":
                configuration.user = value.isEmpty ? nil : value
            case "password":
                configuration.password = value
            case "dbname":
                configuration.database = value
            default:
                guard PostgresConfiguration.passThroughParameters.contains(String(key)) else {
                    throw .invalidURL(
                        "unknown query parameter \(quoted(key, otherwise: "(one of them)")); supported: sslmode, application_name, connect_timeout, host, port, user, password, dbname, "
                            + PostgresConfiguration.passThroughParameters.sorted().joined(separator: ", "))
                }
                configuration.extraParameters[String(key)] = value
            }
        }
        if configuration.host.isEmpty { throw .invalidURL("it names no host") }
        if configuration.database.isEmpty { throw .invalidURL("it names no database (add /<database> after the host)") }
        return configuration
    }

    private func parsePort(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(text), (1...65535).contains(port)
        else { return nil }
        return port
    }
}
