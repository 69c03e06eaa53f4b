/// One command: its name and arguments, binary-safe.
///
/// ```swift
/// var command: RedisCommand = ["XADD", "stream", "*"]
/// command.append("job")
/// command.append(bytes: payload)
/// ```
public struct RedisCommand: Sendable, Hashable, ExpressibleByArrayLiteral {
    /// The command name followed by its arguments, each sent as a bulk string.
    public var arguments: [[UInt8]]

    /// A command from strings (each encoded as UTF-8).
    public init(_ arguments: [String]) {
        self.arguments = arguments.map { Array($0.utf8) }
    }

    /// A command from raw bytes.
    public init(bytes: [[UInt8]]) {
        self.arguments = bytes
    }

    /// A command from a literal: `["GET", key]`.
    public init(arrayLiteral elements: String...) {
        self.init(elements)
    }

    /// Appends a string argument (UTF-8).
    public mutating func append(_ s: String) {
        arguments.append(Array(s.utf8))
    }

    /// Appends a binary argument.
    public mutating func append(bytes: [UInt8]) {
        arguments.append(bytes)
    }

    /// Appends an integer argument, in decimal.
    public mutating func append(_ i: Int) {
        arguments.append(Array(String(i).utf8))
    }

    /// Appends a 64-bit integer argument, in decimal.
    public mutating func append(_ i: Int64) {
        arguments.append(Array(String(i).utf8))
    }

    /// Appends a floating-point argument the way Redis reads it (`inf`, `-inf` for infinities).
    public mutating func append(_ d: Double) {
        if d.isInfinite {
            append(d > 0 ? "+inf" : "-inf")
        } else {
            arguments.append(Array(String(d).utf8))
        }
    }

    /// The command name in upper case (`""` for an empty command), for logs and errors.
    public var name: String {
        arguments.first.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? ""
    }
}

extension RedisCommand: CustomStringConvertible {
    /// The command name and the number of arguments, never the arguments themselves (they may
    /// hold secrets, as `AUTH` does).
    public var description: String {
        "\(name) (\(max(arguments.count - 1, 0)) arguments)"
    }
}
