import JSON
import Yams

/// Reads YAML nodes into typed values. Every failure names the file, the dotted key, the line,
/// what was expected and what was found; `${VAR}` references are expanded in every scalar value.
struct ConfigReader {
    let file: String
    let environment: [String: String]

    func error(_ key: String, _ message: String, at node: Node?) -> ConfigError {
        ConfigError(file: file, key: key, message: message, line: node?.mark?.line)
    }

    // MARK: Shapes

    /// A plain `~`, `null` or empty scalar.
    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// How a found value is shown in a message: scalars quoted (URLs with their secrets masked),
    /// collections by kind.
    func describe(_ node: Node, text: String? = nil) -> String {
        switch node {
        case .mapping: return "a map"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            if isNull(node) { return "nothing" }
            var shown = ServiceURL.masked(text ?? scalar.string)
            if shown.count > 80 { shown = String(shown.prefix(77)) + "..." }
            return JSONText.quote(shown, escapingNonPrintable: true)
        }
    }

    /// The key/value pairs of a mapping whose keys the user names (queues, schedules, path maps):
    /// keys must be scalars; `<<` merge keys are applied, explicit keys winning. `nil` and null are empty.
    func entries(_ node: Node?, key: String, expected: String) throws(ConfigError) -> [Entry] {
        guard let node, !isNull(node) else { return [] }
        guard case .mapping(let mapping) = node else {
            throw error(key, "expected \(expected), got \(describe(node))", at: node)
        }
        var result: [Entry] = []
        var merged: [Entry] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let keyScalar) = keyNode else {
                throw error(key, "keys must be plain names, got \(describe(keyNode))", at: keyNode)
            }
            if keyScalar.string == "<<" && keyScalar.style != .singleQuoted && keyScalar.style != .doubleQuoted {
                let sources: [Node]
                switch value {
                case .mapping: sources = [value]
                case .sequence(let sequence): sources = Array(sequence)
                default: throw error(key, "a merge key (<<) takes a map or a list of maps, got \(describe(value))", at: value)
                }
                for source in sources {
                    for entry in try entries(source, key: key, expected: "a map to merge")
                    where !merged.contains(where: { $0.name == entry.name }) {
                        merged.append(entry)
                    }
                }
                continue
            }
            result.append(Entry(name: keyScalar.string, keyNode: keyNode, value: value))
        }
        for entry in merged where !result.contains(where: { $0.name == entry.name }) {
            result.append(entry)
        }
        return result
    }

    /// A settings map whose keys must all be in `known`. `nil` when the key is absent; null is an empty map.
    func section(_ node: Node?, key: String, known: [String]) throws(ConfigError) -> Section? {
        guard let node else { return nil }
        let list = try entries(node, key: key, expected: "a map with the keys \(known.joined(separator: ", "))")
        for entry in list where !known.contains(entry.name) {
            var message = "unknown key"
            if let suggestion = Self.closest(to: entry.name, in: known) {
                message += "; did you mean \"\(suggestion)\"?"
            }
            message += " (expected one of: \(known.joined(separator: ", ")))"
            throw error(Self.join(key, entry.name), message, at: entry.keyNode)
        }
        return Section(key: key, node: node, entries: list)
    }

    // MARK: Scalars

    /// The scalar's text with `${VAR}` expanded, or `nil` for null.
    func optionalText(_ node: Node, key: String, expected: String) throws(ConfigError) -> String? {
        guard case .scalar(let scalar) = node else {
            throw error(key, "expected \(expected), got \(describe(node))", at: node)
        }
        if isNull(node) { return nil }
        do {
            return try EnvironmentExpansion.expand(scalar.string, environment: environment)
        } catch {
            switch error {
            case .unset(let name):
                throw self.error(key, "environment variable \(name) is not set (write ${\(name):-default} to give a default)", at: node)
            case .malformed(let problem):
                throw self.error(key, "bad variable reference: \(problem)", at: node)
            }
        }
    }

    /// The scalar's text with `${VAR}` expanded; null is refused.
    func text(_ node: Node, key: String, expected: String) throws(ConfigError) -> String {
        guard let text = try optionalText(node, key: key, expected: expected) else {
            throw error(key, "expected \(expected), got nothing", at: node)
        }
        return text
    }

    /// A string that is not blank unless `allowEmpty`; the value is kept as written.
    func string(_ node: Node, key: String, expected: String = "a string", allowEmpty: Bool = false) throws(ConfigError) -> String {
        let value = try text(node, key: key, expected: expected)
        guard allowEmpty || !value.trimmingWhitespace().isEmpty else {
            throw error(key, "expected \(expected), got an empty string", at: node)
        }
        return value
    }

    /// A whole number in `range`.
    func int(_ node: Node, key: String, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let expected =
            range.upperBound == Int.max
            ? "a whole number ≥ \(range.lowerBound)"
            : "a whole number from \(range.lowerBound) to \(range.upperBound)"
        let value = try text(node, key: key, expected: expected)
        guard let number = Int(value.trimmingWhitespace()), range.contains(number) else {
            throw error(key, "expected \(expected), got \(describe(node, text: value))", at: node)
        }
        return number
    }

    /// `true`/`false` (also `yes`/`no`, `on`/`off`).
    func bool(_ node: Node, key: String) throws(ConfigError) -> Bool {
        let expected = "true or false"
        let value = try text(node, key: key, expected: expected)
        switch value.trimmingWhitespace().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(key, "expected \(expected), got \(describe(node, text: value))", at: node)
        }
    }

    /// A duration in seconds that is at least `minimum` (strictly more when `exclusive`).
    func duration(_ node: Node, key: String, minimum: Double = 0, exclusive: Bool = true) throws(ConfigError) -> Double {
        let bound =
            exclusive && minimum == 0
            ? "more than 0"
            : "\(exclusive ? "more than" : "at least") \(DurationParser.format(minimum))"
        let expected = "a duration such as 30s, 10m, 2h or 7d, \(bound)"
        let value = try text(node, key: key, expected: expected)
        guard let seconds = DurationParser.parse(value) else {
            throw error(key, "expected \(expected), got \(describe(node, text: value))", at: node)
        }
        guard exclusive ? seconds > minimum : seconds >= minimum else {
            throw error(key, "expected \(bound), got \(describe(node, text: value))", at: node)
        }
        return seconds
    }

    /// One of `choices` (case is ignored; the result is lower case).
    func choice(_ node: Node, key: String, _ choices: [String]) throws(ConfigError) -> String {
        let expected = "one of \(choices.joined(separator: ", "))"
        let value = try text(node, key: key, expected: expected)
        let lowered = value.trimmingWhitespace().lowercased()
        guard choices.contains(lowered) else {
            throw error(key, "expected \(expected), got \(describe(node, text: value))", at: node)
        }
        return lowered
    }

    /// An absolute path.
    func absolutePath(_ node: Node, key: String) throws(ConfigError) -> String {
        let expected = "an absolute path (starting with /)"
        let value = try text(node, key: key, expected: expected)
        guard value.hasPrefix("/"), !value.contains("\0") else {
            throw error(key, "expected \(expected), got \(describe(node, text: value))", at: node)
        }
        var path = value
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        return path
    }

    /// A list of strings; a single string is not accepted in its place.
    func stringList(_ node: Node, key: String, expected: String) throws(ConfigError) -> [(String, Node)] {
        if isNull(node) { return [] }
        guard case .sequence(let sequence) = node else {
            throw error(key, "expected a list of \(expected), got \(describe(node))", at: node)
        }
        var result: [(String, Node)] = []
        for (index, item) in sequence.enumerated() {
            result.append((try string(item, key: "\(key)[\(index)]", expected: expected), item))
        }
        return result
    }

    // MARK: JSON

    /// Any YAML value as JSON, for schedule payloads. Plain scalars become null,
    /// booleans (`true`/`false`) or numbers when they look like them; everything else is a string.
    func json(_ node: Node, key: String) throws(ConfigError) -> JSONValue {
        switch node {
        case .mapping:
            var members: [(String, JSONValue)] = []
            for entry in try entries(node, key: key, expected: "a map") {
                members.append((entry.name, try json(entry.value, key: Self.join(key, entry.name))))
            }
            return .object(members)
        case .sequence(let sequence):
            var items: [JSONValue] = []
            for (index, item) in sequence.enumerated() {
                items.append(try json(item, key: "\(key)[\(index)]"))
            }
            return .array(items)
        case .alias:
            throw error(key, "unresolved alias", at: node)
        case .scalar(let scalar):
            guard let value = try optionalText(node, key: key, expected: "a value") else { return .null }
            guard scalar.style == .plain || scalar.style == .any else { return .string(value) }
            switch value {
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default: break
            }
            let unsigned = value.hasPrefix("+") ? String(value.dropFirst()) : value
            if JSONValue.isNumber(unsigned) { return .number(unsigned) }
            let body = unsigned.hasPrefix("-") ? unsigned.dropFirst() : Substring(unsigned)
            let numeric =
                body.first.map { $0.isASCIIDigit || $0 == "." } == true
                && body.allSatisfy { $0.isASCIIDigit || ".eE+-".contains($0) }
            let leadingZero = body.count > 1 && body.hasPrefix("0") && body.dropFirst().first?.isASCIIDigit == true
            if numeric, !leadingZero, let double = Double(unsigned), double.isFinite {
                return .number(Number.format(double))
            }
            return .string(value)
        }
    }

    // MARK: Helpers

    static func join(_ parent: String, _ child: String) -> String {
        parent.isEmpty ? child : parent + "." + child
    }

    /// The known key nearest to a misspelt one, if it is close enough to be the likely intent.
    static func closest(to name: String, in known: [String]) -> String? {
        let lowered = name.lowercased().replacingOccurrences(of: "-", with: "_")
        var best: (String, Int)?
        for candidate in known {
            let distance = editDistance(lowered, candidate)
            if distance <= max(1, candidate.count / 3), distance < (best?.1 ?? .max) { best = (candidate, distance) }
        }
        return best?.0
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// One key/value pair of a YAML mapping.
struct Entry {
    var name: String
    var keyNode: Node
    var value: Node
}

/// A settings map whose keys have been checked.
struct Section {
    /// Dotted path of the map itself.
    var key: String
    var node: Node
    var entries: [Entry]

    /// The value of `name`, or `nil` when absent.
    subscript(_ name: String) -> Node? {
        entries.first { $0.name == name }?.value
    }

    /// Dotted path of `name` inside this map.
    func path(_ name: String) -> String {
        ConfigReader.join(key, name)
    }
}
