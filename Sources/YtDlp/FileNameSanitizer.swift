import Foundation

/// Turns text from a site (titles, channel names, ids) into one safe path component.
///
/// The result never contains `/` (or `\`), never starts with `.`, has no control or bidirectional
/// formatting characters, is valid UTF-8 in NFC, has no leading or trailing spaces, is at most
/// `maxBytes` bytes (cut on a character boundary), and is never a name Windows reserves
/// (`CON`, `NUL`, `COM1`, ...), so it can live on a Samba or NTFS share too. Characters Windows
/// forbids in names become their full-width look-alikes, as yt-dlp does: `/` → `⧸`, `\` → `⧹`,
/// `:` → `：`, `*` → `＊`, `?` → `？`, `"` → `＂`, `<` → `＜`, `>` → `＞`, `|` → `｜`.
/// Text that sanitises to nothing becomes the caller's placeholder.
public enum FileNameSanitizer {
    /// The longest component, in bytes of UTF-8.
    public static let maxBytes = 200

    static let replacements: [Unicode.Scalar: String] = [
        "/": "⧸", "\\": "⧹", ":": "：", "*": "＊", "?": "？", "\"": "＂", "<": "＜", ">": "＞", "|": "｜",
    ]

    static let reservedNames: Set<String> = {
        var names: Set<String> = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
        for n in 1...9 { names.insert("COM\(n)"); names.insert("LPT\(n)") }
        return names
    }()

    /// `text` as a safe path component, or `placeholder` (itself sanitised) when nothing is left.
    public static func sanitize(_ text: String, placeholder: String = "untitled", maxBytes: Int = maxBytes) -> String {
        let cleaned = clean(text, maxBytes: maxBytes)
        if !cleaned.isEmpty { return cleaned }
        let fallback = clean(placeholder, maxBytes: maxBytes)
        return fallback.isEmpty ? "untitled" : fallback
    }

    /// Bytes that should be UTF-8 (invalid sequences become U+FFFD) as a safe path component.
    public static func sanitize(bytes: [UInt8], placeholder: String = "untitled", maxBytes: Int = maxBytes) -> String {
        sanitize(String(decoding: bytes, as: UTF8.self), placeholder: placeholder, maxBytes: maxBytes)
    }

    static func clean(_ text: String, maxBytes: Int) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        var lastWasSpace = true  // drops leading spaces
        for scalar in text.precomposedStringWithCanonicalMapping.unicodeScalars {
            if let replacement = replacements[scalar] {
                out += replacement
                lastWasSpace = false
                continue
            }
            if scalar.properties.isWhitespace {
                // Tabs, newlines and other spaces become one plain space.
                if !lastWasSpace { out.unicodeScalars.append(" ") }
                lastWasSpace = true
                continue
            }
            if isDropped(scalar) { continue }
            out.unicodeScalars.append(scalar)
            lastWasSpace = false
        }
        out = trimmed(out)
        out = truncate(out, maxBytes: maxBytes)
        out = trimmed(out)
        if isReserved(out) {
            // CON → CON_, con.txt → con_.txt: the part before the first dot is what Windows checks.
            if let dot = out.firstIndex(of: ".") { out.insert("_", at: dot) } else { out += "_" }
        }
        return out
    }

    /// Leading dots and spaces, and trailing dots and spaces, removed (no hidden files, no `.` or
    /// `..`, nothing Windows would strip).
    static func trimmed(_ s: String) -> String {
        var scalars = Substring(s).unicodeScalars[...]
        while let f = scalars.first, f == "." || f == " " { scalars.removeFirst() }
        while let l = scalars.last, l == "." || l == " " { scalars.removeLast() }
        return String(scalars)
    }

    /// Control characters (C0, DEL, C1), line and paragraph separators, bidirectional marks,
    /// overrides and isolates, zero-width spaces and byte-order marks.
    static func isDropped(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x20 || (0x7F...0x9F).contains(v) { return true }
        switch v {
        // Zero-width space, direction marks, separators, embeddings, overrides, isolates, BOM.
        // (Joiners U+200C/U+200D stay: emoji sequences and several scripts need them.)
        case 0x200B, 0x200E, 0x200F, 0x2028...0x202E, 0x2060...0x2069, 0xFEFF, 0xFFF9...0xFFFB: return true
        default: return false
        }
    }

    /// Whether `name` (or its part before the first dot) is a reserved device name.
    static func isReserved(_ name: String) -> Bool {
        let stem = name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? name
        return reservedNames.contains(stem.trimmingCharacters(in: .whitespaces).uppercased())
    }

    /// At most `maxBytes` bytes of UTF-8, cut between characters (grapheme clusters), so no
    /// character is split and no combining mark is orphaned.
    public static func truncate(_ s: String, maxBytes: Int) -> String {
        guard s.utf8.count > maxBytes else { return s }
        var count = 0
        var end = s.startIndex
        for index in s.indices {
            let next = s.index(after: index)
            let size = s.utf8.distance(from: index, to: next)
            if count + size > maxBytes { break }
            count += size
            end = next
        }
        return String(s[..<end])
    }
}
