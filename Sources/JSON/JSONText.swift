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
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 2)
        appendQuoted(s, escapingNonPrintable: escapingNonPrintable, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Appends `s` quoted and escaped as ``quote(_:escapingNonPrintable:)`` writes it, working on its
    /// UTF-8 bytes: every byte that needs no escape is copied as it is.
    static func appendQuoted(_ s: String, escapingNonPrintable: Bool = false, to out: inout [UInt8]) {
        func escape(_ value: UInt32, _ out: inout [UInt8]) {
            let digits = hexDigits
            out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u")])
            for shift in stride(from: 12, through: 0, by: -4) { out.append(digits[Int((value >> UInt32(shift)) & 0xF)]) }
        }
        out.append(UInt8(ascii: "\""))
        var utf8 = s
        utf8.withUTF8 { bytes in
            var i = 0
            let n = bytes.count
            while i < n {
                let b = bytes[i]
                switch b {
                case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), b])
                case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), b])
                case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0..<0x20: escape(UInt32(b), &out)
                case 0x7F where escapingNonPrintable: escape(0x7F, &out)
                case 0xC2 where escapingNonPrintable && i + 1 < n && (0x80...0x9F).contains(bytes[i + 1]):
                    // U+0080–U+009F, the C1 controls.
                    escape(UInt32(bytes[i + 1]), &out)
                    i += 2
                    continue
                case 0xE2 where i + 2 < n && bytes[i + 1] == 0x80 && (bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9):
                    // U+2028 and U+2029, line and paragraph separators.
                    escape(0x2000 | UInt32(bytes[i + 2] & 0x3F), &out)
                    i += 3
                    continue
                default: out.append(b)
                }
                i += 1
            }
        }
        out.append(UInt8(ascii: "\""))
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
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(256)
        var first = true
        for (key, value) in pairs {
            guard let value else { continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            appendQuoted(key, to: &out)
            out.append(UInt8(ascii: ":"))
            switch value {
            case .string(let text): appendQuoted(text, to: &out)
            case .raw(let text): out.append(contentsOf: text.utf8)
            default: out.append(contentsOf: value.encoded.utf8)
            }
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }
}
