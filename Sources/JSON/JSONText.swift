import Foundation

/// Small, allocation-light JSON writing for the hot path (events, results), and the one string
/// escaper (``quote(_:)``) that ``JSONValue/encoded`` uses too.
package enum JSONText {
    /// `s` as a JSON string literal, quotes included: `"` and `\` escaped, `\n` `\r` `\t` by
    /// name, the other C0 controls and U+2028/U+2029 as `\u00XX`/`\u2028`/`\u2029` (so the
    /// text is also safe inside JavaScript); everything else as it is. This is what every event,
    /// record, answer and webhook body is written with.
    package static func quote(_ s: String) -> String {
        quote(s, escapingNonPrintable: false)
    }

    /// Like ``quote(_:)``; with `escapingNonPrintable` DEL and the C1 controls (U+007F–U+009F)
    /// are written as `\u` escapes too, so the result is also a YAML double-quoted scalar and
    /// safe to show on a terminal (configuration messages and `check-config`).
    package static func quote(_ s: String, escapingNonPrintable: Bool) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _
            where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029
                || (escapingNonPrintable && (0x7F...0x9F).contains(scalar.value)):
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
        return out
    }

    /// A JSON value for the writer.
    package enum Value: Sendable, Equatable {
        case string(String)
        case int(Int64)
        case double(Double)
        /// A number with one decimal (progress percentages).
        case oneDecimal(Double)
        case bool(Bool)
        case null
        /// Already-encoded JSON, inserted verbatim.
        case raw(String)

        var encoded: String {
            switch self {
            case .string(let s): return JSONText.quote(s)
            case .int(let i): return String(i)
            case .double(let d): return d.isFinite ? String(d) : "null"
            case .oneDecimal(let d): return d.isFinite ? String(format: "%.1f", d) : "null"
            case .bool(let b): return b ? "true" : "false"
            case .null: return "null"
            case .raw(let r): return r
            }
        }
    }

    /// An object from ordered pairs (nil values are left out).
    package static func object(_ pairs: [(String, Value?)]) -> String {
        var out = "{"
        var first = true
        for (key, value) in pairs {
            guard let value else { continue }
            if !first { out += "," }
            first = false
            out += quote(key)
            out += ":"
            out += value.encoded
        }
        return out + "}"
    }
}
