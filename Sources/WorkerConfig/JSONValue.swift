/// A JSON value that keeps the order of object members, for schedule payloads and reserved sections.
indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// A number, as JSON number text.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([Member])

    struct Member: Equatable, Sendable {
        var name: String
        var value: JSONValue
    }

    /// Compact JSON text.
    var text: String {
        var output = ""
        write(to: &output)
        return output
    }

    private func write(to output: inout String) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .number(let text): output += text
        case .string(let text): Self.writeString(text, to: &output)
        case .array(let items):
            output += "["
            for (index, item) in items.enumerated() {
                if index > 0 { output += "," }
                item.write(to: &output)
            }
            output += "]"
        case .object(let members):
            output += "{"
            for (index, member) in members.enumerated() {
                if index > 0 { output += "," }
                Self.writeString(member.name, to: &output)
                output += ":"
                member.value.write(to: &output)
            }
            output += "}"
        }
    }

    /// `text` as a JSON string literal (also a valid YAML double-quoted scalar).
    static func quoted(_ text: String) -> String {
        var output = ""
        writeString(text, to: &output)
        return output
    }

    private static func writeString(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    /// Parses JSON text; `nil` when it is not valid JSON.
    static func parse(_ text: String) -> JSONValue? {
        var parser = Parser(scalars: Array(text.unicodeScalars))
        guard let value = parser.value() else { return nil }
        parser.skipWhitespace()
        return parser.index == parser.scalars.count ? value : nil
    }

    private struct Parser {
        let scalars: [Unicode.Scalar]
        var index = 0

        mutating func skipWhitespace() {
            while index < scalars.count, [" ", "\n", "\r", "\t"].contains(scalars[index]) { index += 1 }
        }

        mutating func value() -> JSONValue? {
            skipWhitespace()
            guard index < scalars.count else { return nil }
            switch scalars[index] {
            case "{":
                index += 1
                var members: [Member] = []
                skipWhitespace()
                if index < scalars.count, scalars[index] == "}" { index += 1; return .object(members) }
                while true {
                    skipWhitespace()
                    guard let name = string() else { return nil }
                    skipWhitespace()
                    guard index < scalars.count, scalars[index] == ":" else { return nil }
                    index += 1
                    guard let item = value() else { return nil }
                    members.append(Member(name: name, value: item))
                    skipWhitespace()
                    guard index < scalars.count else { return nil }
                    if scalars[index] == "," { index += 1; continue }
                    if scalars[index] == "}" { index += 1; return .object(members) }
                    return nil
                }
            case "[":
                index += 1
                var items: [JSONValue] = []
                skipWhitespace()
                if index < scalars.count, scalars[index] == "]" { index += 1; return .array(items) }
                while true {
                    guard let item = value() else { return nil }
                    items.append(item)
                    skipWhitespace()
                    guard index < scalars.count else { return nil }
                    if scalars[index] == "," { index += 1; continue }
                    if scalars[index] == "]" { index += 1; return .array(items) }
                    return nil
                }
            case "\"":
                return string().map(JSONValue.string)
            default:
                let start = index
                while index < scalars.count, !([",", "]", "}", " ", "\n", "\r", "\t"] as [Unicode.Scalar]).contains(scalars[index]) {
                    index += 1
                }
                let word = String(String.UnicodeScalarView(scalars[start..<index]))
                switch word {
                case "null": return .null
                case "true": return .bool(true)
                case "false": return .bool(false)
                default: return JSONValue.isNumber(word) ? .number(word) : nil
                }
            }
        }

        mutating func string() -> String? {
            guard index < scalars.count, scalars[index] == "\"" else { return nil }
            index += 1
            var output = String.UnicodeScalarView()
            while index < scalars.count {
                let scalar = scalars[index]
                index += 1
                if scalar == "\"" { return String(output) }
                guard scalar == "\\" else { output.append(scalar); continue }
                guard index < scalars.count else { return nil }
                let escape = scalars[index]
                index += 1
                switch escape {
                case "\"", "\\", "/": output.append(escape)
                case "n": output.append("\n")
                case "r": output.append("\r")
                case "t": output.append("\t")
                case "b": output.append("\u{8}")
                case "f": output.append("\u{C}")
                case "u":
                    guard let unit = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(unit), index + 1 < scalars.count,
                       scalars[index] == "\\", scalars[index + 1] == "u" {
                        index += 2
                        guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        let combined = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        output.append(Unicode.Scalar(combined) ?? "\u{FFFD}")
                    } else {
                        output.append(Unicode.Scalar(unit) ?? "\u{FFFD}")
                    }
                default: return nil
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= scalars.count,
                  let value = UInt32(String(String.UnicodeScalarView(scalars[index..<index + 4])), radix: 16) else { return nil }
            index += 4
            return value
        }
    }

    /// Whether `text` is a JSON number.
    static func isNumber(_ text: String) -> Bool {
        var scalars = Substring(text).unicodeScalars[...]
        func digits() -> Int {
            var count = 0
            while let first = scalars.first, ("0"..."9").contains(first) { scalars = scalars.dropFirst(); count += 1 }
            return count
        }
        if scalars.first == "-" { scalars = scalars.dropFirst() }
        if scalars.first == "0" {
            scalars = scalars.dropFirst()
        } else if digits() == 0 {
            return false
        }
        if scalars.first == "." {
            scalars = scalars.dropFirst()
            if digits() == 0 { return false }
        }
        if scalars.first == "e" || scalars.first == "E" {
            scalars = scalars.dropFirst()
            if scalars.first == "+" || scalars.first == "-" { scalars = scalars.dropFirst() }
            if digits() == 0 { return false }
        }
        return scalars.isEmpty
    }
}
