import Foundation

/// Small, allocation-light JSON writing for the hot path (events, results).
public enum JSONText {
    /// `s` as a JSON string literal, quotes included.
    public static func quote(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
        return out
    }

    /// A JSON value for the writer.
    public enum Value: Sendable, Equatable {
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
    public static func object(_ pairs: [(String, Value?)]) -> String {
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
