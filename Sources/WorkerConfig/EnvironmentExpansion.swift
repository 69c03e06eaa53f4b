/// Expands `${VAR}` references in configuration values.
///
/// - `${VAR}` is the variable's value; an unset variable is an error.
/// - `${VAR:-default}` is the value, or `default` when the variable is unset or empty.
/// - `${VAR-default}` is the value, or `default` only when the variable is unset.
/// - `$${` writes a literal `${`; any other `$` is kept as it is.
///
/// Names are `[A-Za-z_][A-Za-z0-9_]*`; defaults are literal text (no nesting).
enum EnvironmentExpansion {
    enum Failure: Error, Equatable {
        /// The variable is not set and the reference has no default.
        case unset(String)
        /// The text after `${` is not a valid reference.
        case malformed(String)
    }

    static func expand(_ text: String, environment: [String: String]) throws(Failure) -> String {
        guard text.contains("$") else { return text }
        var output = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            guard character == "$", next < text.endIndex else {
                output.append(character)
                index = next
                continue
            }
            if text[next] == "$" {
                let afterEscape = text.index(after: next)
                if afterEscape < text.endIndex, text[afterEscape] == "{" {
                    output += "${"
                    index = text.index(after: afterEscape)
                } else {
                    output += "$$"
                    index = afterEscape
                }
                continue
            }
            guard text[next] == "{" else {
                output.append(character)
                index = next
                continue
            }
            let bodyStart = text.index(after: next)
            guard let close = text[bodyStart...].firstIndex(of: "}") else {
                throw .malformed("\"${\" without a closing \"}\"")
            }
            output += try resolve(text[bodyStart..<close], environment: environment)
            index = text.index(after: close)
        }
        return output
    }

    private static func resolve(_ body: Substring, environment: [String: String]) throws(Failure) -> String {
        let nameEnd = body.firstIndex { !($0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_")) } ?? body.endIndex
        let name = String(body[..<nameEnd])
        guard let first = name.first, !first.isNumber else {
            throw .malformed("\"${\(body)}\" does not start with a variable name")
        }
        let rest = body[nameEnd...]
        let value = environment[name]
        if rest.isEmpty {
            guard let value else { throw .unset(name) }
            return value
        }
        if rest.hasPrefix(":-") {
            if let value, !value.isEmpty { return value }
            return String(rest.dropFirst(2))
        }
        if rest.hasPrefix("-") {
            return value ?? String(rest.dropFirst())
        }
        throw .malformed("\"${\(body)}\" is not ${NAME}, ${NAME:-default} or ${NAME-default}")
    }
}
