import Foundation
import JSON

/// What a job type's payload must hold (contract sections 1 and 5): its fields with their types,
/// ranges, allowed values and patterns, which are required, and rules that tie fields together.
///
/// Fields the schema does not name are allowed and ignored. JSON `null` for an optional field
/// counts as absent. ``validate(_:)`` gives the first mismatch as a sentence that names the field
/// by its path (`payload.subtitles.auto must be true or false`), which becomes the job's `error`.
package struct PayloadSchema: Sendable {
    /// The fields the type reads, in the order they are checked.
    package var fields: [PayloadField]
    /// Checks across fields, run in order once every field has the right type.
    package var rules: [PayloadRule]

    /// A schema of `fields`, with `rules` run after the fields are checked.
    package init(_ fields: [PayloadField], rules: [PayloadRule] = []) {
        self.fields = fields
        self.rules = rules
    }

    /// A payload without fields of its own (`{}`): anything given is ignored.
    package static let empty = PayloadSchema([])

    /// The first way `payload` does not fit, as a sentence naming the field
    /// (`payload.seconds must be a number from 0 to 86400`, `payload.url is required`), or nil
    /// when it fits.
    package func validate(_ payload: JSONValue) -> String? {
        guard case .object = payload else { return "payload must be an object, not \(payload.kind)" }
        if let problem = PayloadSchema.check(fields: fields, in: payload, path: "payload") { return problem }
        for rule in rules {
            if let problem = rule.check(payload) { return problem }
        }
        return nil
    }

    /// Throws a permanent ``JobFailure`` with ``validate(_:)``'s sentence when `payload` does not
    /// fit (for handlers that can be reached by an envelope that never met the parser).
    package func check(_ payload: JSONValue) throws(JobFailure) {
        if let problem = validate(payload) { throw JobFailure.permanent(problem) }
    }

    /// The schema in one line (`url: string (required), quality?: one of …`), for documentation and logs.
    package var summary: String {
        fields.isEmpty ? "{}" : fields.map(\.summary).joined(separator: ", ")
    }

    static func check(fields: [PayloadField], in object: JSONValue, path: String) -> String? {
        for field in fields {
            let fieldPath = path + "." + field.name
            switch object[field.name] {
            case nil, .null?:
                if field.isRequired { return "\(fieldPath) is required" }
            case let value?:
                if let problem = field.type.check(value, path: fieldPath) { return problem }
            }
        }
        return nil
    }
}

/// One field of a payload (or of an object inside it).
package struct PayloadField: Sendable {
    /// The member name.
    package var name: String
    /// What its value must be.
    package var type: PayloadType
    /// Whether the field must be given (and not null).
    package var isRequired: Bool
    /// What the field is for, or what absence means (for documentation).
    package var note: String?

    /// A field that must be given.
    package static func required(_ name: String, _ type: PayloadType, note: String? = nil) -> PayloadField {
        PayloadField(name: name, type: type, isRequired: true, note: note)
    }

    /// A field that may be left out (or be null).
    package static func optional(_ name: String, _ type: PayloadType, note: String? = nil) -> PayloadField {
        PayloadField(name: name, type: type, isRequired: false, note: note)
    }

    /// `name: type` for a required field, `name?: type` for an optional one.
    package var summary: String {
        "\(name)\(isRequired ? "" : "?"): \(type.summary)"
    }
}

/// What a value must be.
package indirect enum PayloadType: Sendable {
    /// A string, optionally of `length` characters (Unicode scalars) and matching `pattern`.
    case string(length: ClosedRange<Int>? = nil, pattern: PayloadPattern? = nil)
    /// A string, one of these.
    case oneOf([String])
    /// A whole number (`3`, `3.0` and `3e0` all count), within the bounds given.
    case integer(min: Int? = nil, max: Int? = nil)
    /// A finite number, within the bounds given.
    case number(min: Double? = nil, max: Double? = nil)
    /// `true` or `false`.
    case boolean
    /// An object with these fields (others are ignored).
    case object([PayloadField])
    /// An array whose items are all of one type, optionally with `count` items.
    case array(of: PayloadType, count: ClosedRange<Int>? = nil)
    /// A value of either type: for the few fields that take two forms on purpose (a number or a
    /// numeric string, a list or the word `all`).
    case either(PayloadType, PayloadType)

    /// A string of at least one character.
    package static let nonEmptyString = PayloadType.string(length: 1...Int.max)

    /// Nil when `value` fits, else the sentence for the field at `path`.
    func check(_ value: JSONValue, path: String) -> String? {
        switch (self, value) {
        case (.either(let a, let b), _):
            if a.check(value, path: path) == nil || b.check(value, path: path) == nil { return nil }
            return "\(path) must be \(description)"
        case (.object(let fields), .object):
            return PayloadSchema.check(fields: fields, in: value, path: path)
        case (.array(let item, let count), .array(let items)):
            if let count, !count.contains(items.count) { return "\(path) must be \(description)" }
            for (index, element) in items.enumerated() {
                if let problem = item.check(element, path: "\(path)[\(index)]") { return problem }
            }
            return nil
        default:
            return fits(value) ? nil : "\(path) must be \(description)"
        }
    }

    /// Whether a scalar value fits (objects and arrays are checked by `check`).
    private func fits(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.string(let length, let pattern), .string(let s)):
            if let length, !length.contains(s.unicodeScalars.count) { return false }
            return pattern?.matches(s) ?? true
        case (.oneOf(let allowed), .string(let s)):
            return allowed.contains(s)
        case (.integer(let min, let max), .number):
            guard let i = value.intValue else { return false }
            return min.map { i >= $0 } ?? true && max.map { i <= $0 } ?? true
        case (.number(let min, let max), .number):
            guard let d = value.doubleValue, d.isFinite else { return false }
            return min.map { d >= $0 } ?? true && max.map { d <= $0 } ?? true
        case (.boolean, .bool):
            return true
        default:
            return false
        }
    }

    /// What a value must be, after "must be" (`a number from 0 to 86400`, `true or false`).
    package var description: String {
        switch self {
        case .string(let length, let pattern):
            if let pattern { return pattern.description }
            if let length, length.lowerBound == 1, length.upperBound == Int.max { return "a non-empty string" }
            return "a string" + Self.countPhrase(length, unit: "characters")
        case .oneOf(let allowed):
            return allowed.count == 1 ? "\"\(allowed[0])\"" : "one of " + allowed.joined(separator: ", ")
        case .integer(let min, let max):
            return "a whole number" + Self.rangePhrase(min.map(String.init), max.map(String.init))
        case .number(let min, let max):
            return "a number" + Self.rangePhrase(min.map(Self.plain), max.map(Self.plain))
        case .boolean:
            return "true or false"
        case .object:
            return "an object"
        case .array(let item, let count):
            let counted = Self.countPhrase(count, unit: "")
            return "a list" + (counted.isEmpty ? " of" : counted) + " " + item.plural
        case .either(let a, let b):
            return "\(a.description) or \(b.description)"
        }
    }

    /// The description for many items (`strings`, `whole numbers ≥ 0`).
    private var plural: String {
        switch self {
        case .string(let length, let pattern):
            if let pattern { return pattern.plural }
            if let length, length.lowerBound == 1, length.upperBound == Int.max { return "non-empty strings" }
            return "strings" + Self.countPhrase(length, unit: "characters")
        case .oneOf(let allowed): return "values from " + allowed.joined(separator: ", ")
        case .integer(let min, let max): return "whole numbers" + Self.rangePhrase(min.map(String.init), max.map(String.init))
        case .number(let min, let max): return "numbers" + Self.rangePhrase(min.map(Self.plain), max.map(Self.plain))
        case .boolean: return "true/false values"
        case .object: return "objects"
        case .array: return "lists"
        case .either(let a, let b): return "\(a.plural) or \(b.plural)"
        }
    }

    /// Short form for summaries: `number 0–86400`, `one of movie·tv`, `{auto?: boolean}`.
    package var summary: String {
        switch self {
        case .string(let length, let pattern):
            if let pattern { return "string (\(pattern.name))" }
            guard let length else { return "string" }
            if length.upperBound == Int.max { return length.lowerBound <= 1 ? "non-empty string" : "string of ≥ \(length.lowerBound)" }
            return "string of \(length.lowerBound)–\(length.upperBound)"
        case .oneOf(let allowed): return "one of " + allowed.joined(separator: "·")
        case .integer(let min, let max): return "integer" + Self.shortRange(min.map(String.init), max.map(String.init))
        case .number(let min, let max): return "number" + Self.shortRange(min.map(Self.plain), max.map(Self.plain))
        case .boolean: return "boolean"
        case .object(let fields): return "{" + fields.map(\.summary).joined(separator: ", ") + "}"
        case .array(let item, let count):
            let n = count.map { $0.lowerBound == 0 ? " (≤ \($0.upperBound))" : " (\($0.lowerBound)–\($0.upperBound))" } ?? ""
            return "[\(item.summary)]" + n
        case .either(let a, let b): return "\(a.summary) | \(b.summary)"
        }
    }

    private static func plain(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }

    private static func rangePhrase(_ min: String?, _ max: String?) -> String {
        switch (min, max) {
        case let (min?, max?): return " from \(min) to \(max)"
        case let (min?, nil): return " ≥ \(min)"
        case let (nil, max?): return " ≤ \(max)"
        case (nil, nil): return ""
        }
    }

    private static func shortRange(_ min: String?, _ max: String?) -> String {
        switch (min, max) {
        case let (min?, max?): return " \(min)–\(max)"
        case let (min?, nil): return " ≥ \(min)"
        case let (nil, max?): return " ≤ \(max)"
        case (nil, nil): return ""
        }
    }

    /// ` of 1 to 128 characters`, ` of at most 20`, ` of at least 2 characters`, or nothing.
    private static func countPhrase(_ range: ClosedRange<Int>?, unit: String) -> String {
        guard let range else { return "" }
        let tail = unit.isEmpty ? "" : " " + unit
        if range.upperBound == Int.max { return range.lowerBound == 0 ? "" : " of at least \(range.lowerBound)\(tail)" }
        if range.lowerBound == 0 { return " of at most \(range.upperBound)\(tail)" }
        if range.lowerBound == range.upperBound { return " of \(range.lowerBound)\(tail)" }
        return " of \(range.lowerBound) to \(range.upperBound)\(tail)"
    }
}

/// A shape a string must have (a UUID, a language code, digits).
package struct PayloadPattern: Sendable {
    /// Short name for summaries (`uuid`).
    package var name: String
    /// What one such string is, after "must be" (`a UUID such as …`).
    package var description: String
    /// The same for many (`language codes such as en or pt-BR`).
    package var plural: String
    /// Whether a string has the shape.
    package var matches: @Sendable (String) -> Bool

    /// A pattern from its descriptions and test.
    package init(name: String, description: String, plural: String, matches: @escaping @Sendable (String) -> Bool) {
        self.name = name
        self.description = description
        self.plural = plural
        self.matches = matches
    }

    /// A UUID in its 8-4-4-4-12 hex form, either case.
    package static let uuid = PayloadPattern(
        name: "uuid", description: "a UUID such as 3f2c1e9a-8b7d-4c6e-9f01-23456789abcd", plural: "UUIDs",
        matches: { $0.utf8.count == 36 && UUID(uuidString: $0) != nil })

    /// A subtitle language code as yt-dlp takes it: 1–35 of letters, digits, `-` and `_` (`en`, `pt-BR`).
    package static let languageCode = PayloadPattern(
        name: "language code",
        description: "a language code such as en or pt-BR (1 to 35 letters, digits, - or _)",
        plural: "language codes such as en or pt-BR (1 to 35 letters, digits, - or _)",
        matches: { code in
            (1...35).contains(code.utf8.count)
                && code.utf8.allSatisfy { b in
                    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
                }
        })

    /// A string holding a whole number in `range` (what `Int(_:)` reads: digits with an optional sign).
    package static func wholeNumber(_ range: ClosedRange<Int>) -> PayloadPattern {
        PayloadPattern(
            name: "whole number \(range.lowerBound)–\(range.upperBound)",
            description: "a string of a whole number from \(range.lowerBound) to \(range.upperBound)",
            plural: "strings of whole numbers from \(range.lowerBound) to \(range.upperBound)",
            matches: { Int($0).map(range.contains) ?? false })
    }
}

/// A check across fields (`seasons` only with `mediaType` tv), run once every field has its type.
package struct PayloadRule: Sendable {
    /// Nil when the payload keeps the rule, else the sentence naming the field.
    package var check: @Sendable (JSONValue) -> String?

    /// A rule from its check.
    package init(_ check: @escaping @Sendable (JSONValue) -> String?) {
        self.check = check
    }
}

extension JSONValue {
    /// The member `key` of an object, or nil when it is absent or JSON null (an optional payload
    /// field given as null counts as absent).
    package func given(_ key: String) -> JSONValue? {
        switch self[key] {
        case nil, .null?: return nil
        case let value?: return value
        }
    }
}
