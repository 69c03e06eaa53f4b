/// One reply from Redis (RESP2), fully copied out of hiredis' memory.
public enum RedisValue: Sendable, Hashable {
    /// A nil bulk string or nil array (`GET` of a missing key, `BLPOP` timeout).
    case null
    /// An integer reply (`INCR`, `DEL`, `XLEN`).
    case integer(Int64)
    /// A bulk string: binary-safe bytes.
    case bulk([UInt8])
    /// A status reply such as `OK` or `PONG`.
    case status(String)
    /// An error reply such as `ERR unknown command` or `NOGROUP ...`. `RedisConnection.send`
    /// throws these as ``RedisError/server(_:)``; ``RedisConnection/pipeline(_:)`` returns them in place.
    case error(String)
    /// A multi-bulk reply (`LRANGE`, `XREADGROUP`, `EXEC`), elements in order.
    case array([RedisValue])

    /// A bulk string decoded as UTF-8 (invalid sequences become U+FFFD), or a status; otherwise `nil`.
    public var string: String? {
        switch self {
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }

    /// An integer, or a bulk string or status that parses as a decimal integer; otherwise `nil`.
    public var int: Int64? {
        switch self {
        case .integer(let value): return value
        case .bulk, .status: return string.flatMap { Int64($0) }
        default: return nil
        }
    }

    /// An integer, or a bulk string or status that parses as a number (`inf`, `-inf` included,
    /// as `ZSCORE` writes them); otherwise `nil`.
    public var double: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .bulk, .status:
            guard let text = string else { return nil }
            switch text.lowercased() {
            case "inf", "+inf": return .infinity
            case "-inf": return -.infinity
            default: return Double(text)
            }
        default: return nil
        }
    }

    /// The elements of an array reply; otherwise `nil` (a nil array is ``null``).
    public var array: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The bytes of a bulk string, or the UTF-8 bytes of a status; otherwise `nil`.
    public var bytes: [UInt8]? {
        switch self {
        case .bulk(let bytes): return bytes
        case .status(let text): return Array(text.utf8)
        default: return nil
        }
    }

    /// `true` for ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The message of an ``error(_:)`` reply; otherwise `nil`.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}

extension RedisValue: CustomStringConvertible {
    /// A redis-cli style rendering, for test failures and debugging.
    public var description: String {
        switch self {
        case .null: return "(nil)"
        case .integer(let value): return "(integer) \(value)"
        case .bulk(let bytes): return String(reflecting: String(decoding: bytes, as: UTF8.self))
        case .status(let text): return text
        case .error(let message): return "(error) \(message)"
        case .array(let elements): return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
