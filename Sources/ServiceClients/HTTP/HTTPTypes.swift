import Foundation

/// One HTTP request to a service.
public struct HTTPRequest: Sendable, Equatable {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    public var method: String
    /// The absolute URL, query included (see ``URLBuilder``).
    public var url: String
    /// Header names and values, in order. Values may be secrets: they are never logged or put in errors.
    public var headers: [(String, String)]
    /// The body, if any.
    public var body: [UInt8]?

    /// A request.
    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    public static func == (lhs: HTTPRequest, rhs: HTTPRequest) -> Bool {
        lhs.method == rhs.method && lhs.url == rhs.url && lhs.body == rhs.body
            && lhs.headers.count == rhs.headers.count && zip(lhs.headers, rhs.headers).allSatisfy { $0 == $1 }
    }

    /// The value of the first header named `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }

    /// Method and secret-free URL, for logs: `GET http://plex:32400/library/sections`.
    public var logDescription: String { "\(method) \(SafeURL.describe(url))" }
}

/// A service's answer.
public struct HTTPResponse: Sendable, Equatable {
    /// The status code.
    public var status: Int
    /// Header names (lower-cased) and values.
    public var headers: [String: String]
    /// The body.
    public var body: [UInt8]

    /// A response.
    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body as UTF-8 text (invalid bytes replaced).
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// Decodes the body as JSON into `T`.
    public func decode<T: Decodable>(_ type: T.Type, service: String) throws(ServiceError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            let what = body.isEmpty ? "an empty body" : "\(body.count) bytes that are not the expected JSON"
            throw .invalidResponse(service: service, reason: "expected JSON (\(T.self)), got \(what)")
        }
    }
}

/// Sends one HTTP request and returns the answer, whatever its status. Implementations never put
/// header values or query values in their errors.
public protocol HTTPTransport: Sendable {
    /// Sends `request`; gives up after `timeout` seconds with ``ServiceError/timedOut(service:seconds:)``.
    /// Task cancellation stops the request and throws `CancellationError`.
    func send(_ request: HTTPRequest, service: String, timeout: Double) async throws -> HTTPResponse
}

/// Builds request URLs from a configured base URL, a path and query parameters.
public enum URLBuilder {
    /// Characters left as they are in a query value or path segment (RFC 3986 unreserved).
    static let unreserved: Set<UInt8> = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8))

    /// `text` percent-encoded so that it is one query value (or one path segment).
    public static func encode(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if unreserved.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// `base` (with or without a trailing slash) joined with `path` (starting with `/`), plus the
    /// query parameters in order (names are written as given, values encoded).
    public static func url(base: String, path: String, query: [(String, String)] = []) -> String {
        var url = base
        while url.hasSuffix("/") { url.removeLast() }
        url += path.hasPrefix("/") ? path : "/" + path
        if !query.isEmpty {
            url += (url.contains("?") ? "&" : "?") + query.map { "\($0.0)=\(encode($0.1))" }.joined(separator: "&")
        }
        return url
    }
}

/// URLs reduced to what is safe to show: scheme, host, port and path, never credentials or query values.
public enum SafeURL {
    /// `scheme://host[:port]/path` of `url`; the user information, query and fragment are left out.
    public static func describe(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return "(an invalid URL)" }
        let scheme = url[..<schemeEnd.lowerBound]
        var rest = url[schemeEnd.upperBound...]
        if let cut = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<cut] }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        return "\(scheme)://\(authority)\(rest[authorityEnd...])"
    }

    /// `scheme://host[:port]` of `url`.
    public static func origin(_ url: String) -> String {
        let described = describe(url)
        guard let schemeEnd = described.range(of: "://") else { return described }
        let rest = described[schemeEnd.upperBound...]
        let end = rest.firstIndex(of: "/") ?? rest.endIndex
        return String(described[..<end])
    }

    /// The host of `url`, without port, credentials or brackets.
    public static func host(_ url: String) -> String {
        let origin = origin(url)
        guard let schemeEnd = origin.range(of: "://") else { return origin }
        var authority = origin[schemeEnd.upperBound...]
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        if let colon = authority.lastIndex(of: ":") { authority = authority[..<colon] }
        return String(authority)
    }
}
