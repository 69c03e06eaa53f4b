/// One command: its name and arguments, binary-safe.
///
/// ```swift
/// var command: RedisCommand = ["XADD", "stream", "*"]
/// command.append("job")
/// command.append(bytes: payload)
/// ```
public struct RedisCommand: Sendable, Hashable, ExpressibleByArrayLiteral {
    /// The command name followed by its arguments, each sent as a bulk string. For a command built
    /// with `Encoder` only the name: the whole command is `encoded`.
    public var arguments: [[UInt8]]
    /// The whole command in the protocol's own form (RESP), when built with `Encoder`: written as it
    /// is, without a copy per argument.
    public private(set) var encoded: [UInt8]?
    /// How many arguments follow the name in `encoded`.
    private var encodedArguments = 0

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

    /// Builds a command straight into its RESP bytes: one buffer for the whole command, however
    /// many arguments it has (a script call with hundreds of keys and values, say).
    ///
    /// ```swift
    /// var e = RedisCommand.Encoder("EVALSHA")
    /// e.append(sha); e.append(1); e.append(key)
    /// let command = e.command
    /// ```
    public struct Encoder: Sendable {
        private let name: [UInt8]
        private var body: [UInt8] = []
        private var count = 0

        public init(_ name: String, capacity: Int = 256) {
            self.name = Array(name.utf8)
            body.reserveCapacity(capacity)
            append(bytes: self.name)
        }

        /// Appends a string argument (UTF-8).
        public mutating func append(_ s: String) {
            var s = s
            s.withUTF8 { append($0) }
        }

        /// Appends a binary argument.
        public mutating func append(bytes: [UInt8]) {
            bytes.withUnsafeBufferPointer { append($0) }
        }

        /// Appends an integer argument, in decimal.
        public mutating func append(_ i: Int) {
            append(String(i))
        }

        private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
            body.append(UInt8(ascii: "$"))
            Self.decimal(bytes.count, into: &body)
            body.append(13); body.append(10)
            body.append(contentsOf: bytes)
            body.append(13); body.append(10)
            count += 1
        }

        /// `value` in decimal (a short string: no allocation).
        private static func decimal(_ value: Int, into out: inout [UInt8]) {
            out.append(contentsOf: String(value).utf8)
        }

        /// The command: its RESP bytes, and its name for logs and errors.
        public var command: RedisCommand {
            var header: [UInt8] = [UInt8(ascii: "*")]
            Self.decimal(count, into: &header)
            header.append(13); header.append(10)
            var c = RedisCommand(bytes: [name])
            c.encoded = header + body
            c.encodedArguments = count - 1
            return c
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
        "\(name) (\(encoded == nil ? max(arguments.count - 1, 0) : encodedArguments) arguments)"
    }
}
