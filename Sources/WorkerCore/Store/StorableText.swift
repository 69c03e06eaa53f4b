import JSON
import PostgresClient

/// Text and JSON as PostgreSQL can store them.
///
/// PostgreSQL refuses a NUL character in `text` (SQLSTATE 22021), the escape `\u0000` in `jsonb`
/// (22P05) and invalid UTF-8. Whatever reaches a record — a payload, a title from yt-dlp, a control
/// command — is stored escaped instead, so one hostile value never holds up another row:
/// - in text, NUL becomes the six characters `\u0000` and each byte of invalid UTF-8 becomes `\xNN`;
/// - in JSON, strings (and keys) with NUL keep it as the six characters `\u0000`, so the document
///   stays valid JSON;
/// - a JSON document PostgreSQL still refuses (a number out of its range) is stored as a JSON
///   string holding the document's text (`asJSONString`).
enum StorableText {
    /// The six characters that stand for a NUL character.
    static let escapedNUL = "\\u0000"

    /// `bytes` as text: valid UTF-8 without NUL passes as it is (the common case, no copy of the
    /// bytes beyond the string itself); otherwise NUL and invalid bytes are escaped.
    static func text(_ bytes: [UInt8]) -> String {
        if !bytes.contains(0), let valid = String(validating: bytes, as: UTF8.self) { return valid }
        var out = String.UnicodeScalarView()
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        loop: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                let scalar = Unicode.UTF8.decode(encoded)
                if scalar.value == 0 { out.append(contentsOf: escapedNUL.unicodeScalars) } else { out.append(scalar) }
                offset += encoded.count
            case .error(let length):
                for byte in bytes[offset..<offset + length] {
                    out.append(contentsOf: "\\x".unicodeScalars)
                    out.append(contentsOf: hex(byte).unicodeScalars)
                }
                offset += length
            case .emptyInput:
                break loop
            }
        }
        return String(out)
    }

    /// `text` with NUL characters escaped.
    static func text(_ text: String) -> String {
        guard text.utf8.contains(0) else { return text }
        return text.replacingOccurrences(of: "\u{0}", with: escapedNUL)
    }

    /// `text` with NUL characters escaped, when there is text.
    static func text(_ text: String?) -> String? { text.map { Self.text($0) } }

    /// A JSON document PostgreSQL's `jsonb` takes: strings and keys that hold NUL keep it as the
    /// characters `\u0000`. Returns nil when `document` is not JSON at all.
    static func json(_ document: String) -> String? {
        // Only a document that spells \u0000 (or carries a raw NUL) needs the walk.
        guard document.utf8.contains(0) || containsEscapedNUL(document) else { return document }
        guard let value = JSONValue.parse(text(document)) else { return nil }
        return escapingNUL(value).encoded
    }

    /// The value with NUL in every string and key replaced by the characters `\u0000`.
    static func escapingNUL(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let s): return .string(text(s))
        case .array(let items): return .array(items.map(escapingNUL))
        case .object(let pairs): return .object(pairs.map { (text($0.0), escapingNUL($0.1)) })
        default: return value
        }
    }

    /// `document` as one JSON string, for a document `jsonb` refuses even escaped.
    static func asJSONString(_ document: String) -> String {
        JSONText.quote(text(document))
    }

    private static func containsEscapedNUL(_ s: String) -> Bool {
        // Looks for the bytes \u0000 (any case of the u is not valid JSON; digits only).
        let u = Array(s.utf8)
        guard u.count >= 6 else { return false }
        var i = 0
        while i + 5 < u.count {
            if u[i] == UInt8(ascii: "\\") {
                if u[i + 1] == UInt8(ascii: "u"), u[i + 2] == UInt8(ascii: "0"), u[i + 3] == UInt8(ascii: "0"),
                    u[i + 4] == UInt8(ascii: "0"), u[i + 5] == UInt8(ascii: "0")
                {
                    return true
                }
                i += 2  // skip the escaped character, so \\u0000 (an escaped backslash) is not taken for one
                continue
            }
            i += 1
        }
        return false
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}

extension PostgresPool {
    /// Runs a statement whose values may hold what PostgreSQL refuses (a title, an error, a message
    /// from outside): when it refuses them for their text (SQLSTATE 22021, 22P05), the statement is
    /// run once more with every value escaped as `StorableText` says, so the row is stored escaped
    /// rather than not at all.
    func queryStoring(_ sql: String, _ binds: [PostgresBind]) async throws(PostgresError) -> PostgresResult {
        do {
            return try await query(sql, binds)
        } catch  where error.sqlState == "22021" || error.sqlState == "22P05" {
            return try await query(sql, binds.map(StorableText.escaped))
        }
    }
}

extension StorableText {
    /// A bound value with NUL escaped: as JSON where it is a JSON document that spells one, else as text.
    static func escaped(_ bind: PostgresBind) -> PostgresBind {
        guard let text = bind.text else { return bind }
        if containsEscapedNULOrNUL(text), let document = json(text) { return PostgresBind(json: document) }
        return PostgresBind(Self.text(text))
    }

    static func containsEscapedNULOrNUL(_ s: String) -> Bool {
        s.utf8.contains(0) || s.contains("\\u0000")
    }
}
