/// A JSON value, the one model of JSON in the daemon: payloads, events, records, control
/// requests and answers, and the JSON view of `jobs.yml` payloads.
///
/// Objects keep their members in order, repeated names included (``subscript(_:)`` reads the
/// last one, as JavaScript does). Numbers keep their source text, so integers of any size and
/// exact decimals survive a round trip. ``encoded`` is compact JSON with strings escaped by
/// ``JSONText/quote(_:)``.
package enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number; `text` is its exact source form (so integers of any size survive a round trip).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    package static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b || Double(a) == Double(b)
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The member `key` of an object (the last one when repeated).
    package subscript(key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.last(where: { $0.0 == key })?.1
    }

    package var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    package var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    package var doubleValue: Double? { if case .number(let n) = self { return Double(n) }; return nil }
    /// The number as an integer when it is one exactly (`3`, `3.0`, `3e0`).
    package var intValue: Int? {
        guard case .number(let n) = self else { return nil }
        if let i = Int(n) { return i }
        if let d = Double(n), d == d.rounded(), abs(d) < 9.0e15 { return Int(d) }
        return nil
    }
    package var isObject: Bool { if case .object = self { return true }; return false }

    /// What kind of value this is, for error messages ("an array", "a string", …).
    package var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Compact JSON text.
    package var encoded: String {
        var out = ""
        encode(into: &out)
        return out
    }

    private func encode(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): out += JSONText.quote(s)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.encode(into: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out += "," }
                out += JSONText.quote(k)
                out += ":"
                v.encode(into: &out)
            }
            out += "}"
        }
    }

    /// Parses a complete JSON text (RFC 8259). Nesting deeper than 512 levels is refused.
    package static func parse(_ text: String) -> JSONValue? {
        var parser = JSONParser(bytes: Array(text.utf8))
        return parser.parseDocument()
    }

    /// Parses UTF-8 bytes; `nil` when they are not one complete JSON text (invalid UTF-8 in a
    /// string, a lone surrogate escape and nesting deeper than 512 levels included).
    package static func parse(bytes: [UInt8]) -> JSONValue? {
        var parser = JSONParser(bytes: bytes)
        return parser.parseDocument()
    }

    /// Whether `text` is exactly one JSON number (`-0.5e3`, `12`; not `01`, `1.`, `+1`, `.5`).
    package static func isNumber(_ text: String) -> Bool {
        var parser = JSONParser(bytes: Array(text.utf8))
        guard case .number? = parser.parseNumber() else { return false }
        return parser.i == parser.bytes.count
    }
}
