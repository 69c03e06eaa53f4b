import Foundation

/// A value bound to a `$n` parameter, in PostgreSQL's text format (`nil` = SQL NULL).
///
/// Values always travel to the server as parameters, never spliced into SQL, so no
/// quoting of the SQL text is ever needed. The server converts the text to the
/// parameter's type (add a cast such as `$1::timestamptz` or `$2::text[]` where the
/// type cannot be inferred).
public struct PostgresBind: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral
{
    /// The text sent to the server, or `nil` for SQL NULL.
    public let text: String?

    /// SQL NULL.
    public static let null = PostgresBind(text: nil)

    private init(text: String?) {
        self.text = text
    }

    /// A text value, as is.
    public init(_ value: String?) {
        text = value
    }

    /// An integer, in decimal.
    public init(_ value: Int?) {
        text = value.map { String($0) }
    }

    /// A 64-bit integer, in decimal.
    public init(_ value: Int64?) {
        text = value.map { String($0) }
    }

    /// A floating-point number: the shortest decimal that reads back as the same
    /// `Double`; `Infinity`, `-Infinity` and `NaN` as PostgreSQL spells them.
    public init(_ value: Double?) {
        text = value.map { Self.format($0) }
    }

    /// A boolean, as `true` or `false`.
    public init(_ value: Bool?) {
        text = value.map { $0 ? "true" : "false" }
    }

    /// An instant, as ISO 8601 in UTC with milliseconds, e.g. `2026-11-24T10:00:00.123Z`
    /// (sub-millisecond parts are rounded to the nearest millisecond).
    public init(_ value: Date?) {
        text = value.map { PostgresTimestamp.format($0) }
    }

    /// A UUID, in lower case.
    public init(_ value: UUID?) {
        text = value.map { $0.uuidString.lowercased() }
    }

    /// A text array literal such as `{"a","b\"c",NULL}`: every element quoted, with `"`
    /// and `\` escaped, so braces, commas, quotes, backslashes, spaces and the word
    /// NULL inside elements all survive; `nil` elements become SQL NULL.
    /// Bind it to `$n::text[]`.
    public init(array: [String?]) {
        // Built as UTF-8 bytes: only `"` and `\` need a backslash inside a quoted element.
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        bytes.reserveCapacity(array.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (position, element) in array.enumerated() {
            if position > 0 { bytes.append(UInt8(ascii: ",")) }
            guard let element else {
                bytes.append(contentsOf: "NULL".utf8)
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            for byte in element.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        text = String(decoding: bytes, as: UTF8.self)
    }

    /// A bigint array literal such as `{1,2,NULL}`. Bind it to `$n::bigint[]` (or `int[]`).
    public init(array: [Int64?]) {
        text = "{" + array.map { $0.map { String($0) } ?? "NULL" }.joined(separator: ",") + "}"
    }

    /// An integer array literal such as `{1,2,NULL}`.
    public init(array: [Int?]) {
        text = "{" + array.map { $0.map { String($0) } ?? "NULL" }.joined(separator: ",") + "}"
    }

    /// A JSON text, sent as is (bind it to `$n::jsonb` or `$n::json`; the server checks it).
    public init(json: String?) {
        text = json
    }

    /// A string literal binds as text.
    public init(stringLiteral value: String) {
        text = value
    }

    /// An integer literal binds as a decimal integer.
    public init(integerLiteral value: Int) {
        text = String(value)
    }

    /// A boolean literal binds as `true` or `false`.
    public init(booleanLiteral value: Bool) {
        text = value ? "true" : "false"
    }

    /// `nil` binds as SQL NULL.
    public init(nilLiteral: ()) {
        text = nil
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        return value.description
    }
}

extension PostgresBind: CustomStringConvertible {
    /// The text, or `NULL`.
    public var description: String { text ?? "NULL" }
}
