/// The library naming template (`youtube.output`, e.g. `{channel}/{title} [{id}].{ext}`), rendered
/// with sanitised values into a relative path that always stays inside the library.
///
/// Every placeholder value goes through `FileNameSanitizer`, so no value can add a folder or climb
/// out of one. Each rendered folder and the file's base name (the name without `.{ext}`) is at most
/// `FileNameSanitizer.maxBytes` bytes: when one is longer, its longest values are shortened (on
/// character boundaries) until it fits, so the literal parts of the template, such as ` [{id}]`,
/// survive. Sidecars (`-thumb.jpg`, `.nfo`, `.en.srt`) add to the base name and stay well under
/// the 255 bytes file systems allow.
public struct OutputTemplate: Sendable, Equatable {
    /// The template text.
    public let template: String

    /// The placeholders a template may use.
    public static let placeholders = ["channel", "title", "id", "date", "ext", "user", "playlist", "index"]

    public init(_ template: String) {
        self.template = template
    }

    /// A rendered template.
    public struct Rendered: Sendable, Equatable {
        /// Folders below the library, outermost first (each a safe component).
        public var folders: [String]
        /// The file's name without its extension (sidecars are named after it).
        public var baseName: String
        /// The file's name.
        public var fileName: String

        /// The path relative to the library.
        public var relativePath: String { (folders + [fileName]).joined(separator: "/") }
        /// The folder path relative to the library ("" for the library itself).
        public var relativeFolder: String { folders.joined(separator: "/") }
    }

    private enum Piece: Equatable {
        case literal(String)
        case field(String)
    }

    /// Renders the template. `values` maps placeholder names to raw values (from the site or the
    /// job); missing or empty values take `placeholder(name)`. `ext` is the file's extension,
    /// without the dot.
    public func render(
        _ values: [String: String], ext: String, placeholder: (String) -> String = OutputTemplate.defaultPlaceholder
    ) -> Rendered {
        let safeExt = FileNameSanitizer.sanitize(ext, placeholder: "bin", maxBytes: 16)
        var components = template.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if components.isEmpty { components = ["{title} [{id}].{ext}"] }
        var last = components.removeLast()
        var appendExt = true
        if last.hasSuffix(".{ext}") {
            last.removeLast(".{ext}".count)
        } else if last.contains("{ext}") {
            appendExt = false
        }
        func value(_ name: String) -> String {
            if name == "ext" { return safeExt }
            let raw = values[name] ?? ""
            let fallback = placeholder(name)
            return FileNameSanitizer.sanitize(raw, placeholder: fallback)
        }
        let folders = components.map { renderComponent(parse($0), value: value, placeholder: "untitled") }
        let base = renderComponent(parse(last), value: value, placeholder: value("id"))
        let fileName = appendExt ? base + "." + safeExt : base
        return Rendered(folders: folders, baseName: base, fileName: fileName)
    }

    /// What a missing value becomes.
    public static func defaultPlaceholder(_ name: String) -> String {
        switch name {
        case "channel": return "Unknown channel"
        case "title": return "Untitled"
        case "id": return "unknown-id"
        case "date": return "unknown-date"
        case "user": return "unknown-user"
        case "playlist": return "Videos"
        case "index": return "00"
        default: return "unknown"
        }
    }

    private func parse(_ component: String) -> [Piece] {
        var pieces: [Piece] = []
        var literal = ""
        var rest = Substring(component)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else { break }
            let name = String(rest[rest.index(after: open)..<close])
            if Self.placeholders.contains(name) {
                literal += rest[..<open]
                if !literal.isEmpty { pieces.append(.literal(literal)); literal = "" }
                pieces.append(.field(name))
            } else {
                literal += rest[...close]
            }
            rest = rest[rest.index(after: close)...]
        }
        literal += rest
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        return pieces
    }

    /// Joins the pieces, shortening the longest values until the component fits, then sanitises
    /// the whole (a literal may start with a dot, say).
    private func renderComponent(_ pieces: [Piece], value: (String) -> String, placeholder: String) -> String {
        var values: [String] = pieces.map {
            switch $0 {
            case .literal(let text): return text
            case .field(let name): return value(name)
            }
        }
        let fieldIndices = pieces.indices.filter { if case .field(let n) = pieces[$0] { return n != "ext" } else { return false } }
        let limit = FileNameSanitizer.maxBytes
        var total = values.reduce(0) { $0 + $1.utf8.count }
        while total > limit {
            guard let longest = fieldIndices.max(by: { values[$0].utf8.count < values[$1].utf8.count }),
                values[longest].utf8.count > 0
            else { break }
            let excess = total - limit
            let keep = max(values[longest].utf8.count - excess, 0)
            var shortened = FileNameSanitizer.truncate(values[longest], maxBytes: keep)
            while shortened.last == " " { shortened.removeLast() }
            if shortened.utf8.count == values[longest].utf8.count { shortened = String(shortened.dropLast()) }
            values[longest] = shortened
            total = values.reduce(0) { $0 + $1.utf8.count }
        }
        return FileNameSanitizer.sanitize(values.joined(), placeholder: placeholder)
    }
}
