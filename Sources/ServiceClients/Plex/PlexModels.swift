/// The parts of Plex Media Server's JSON answers (`Accept: application/json`) the daemon reads.
/// Plex writes keys as strings in some versions and numbers in others; both are read.

/// `GET /identity`.
public struct PlexIdentity: Sendable, Equatable, Decodable {
    /// The server's machine identifier (used in `server://` URIs).
    public var machineIdentifier: String
    /// The server's version.
    public var version: String?
}

/// A library section (`GET /library/sections`, `Directory`).
public struct PlexSection: Sendable, Equatable, Decodable {
    /// The section id used in paths.
    public var key: String
    /// The name shown in Plex.
    public var title: String
    /// `movie`, `show`, `artist`, `photo`.
    public var type: String
    /// The folders of the section as the server sees them.
    public var locations: [String]

    enum CodingKeys: String, CodingKey { case key, title, type, Location }
    struct Location: Decodable { var path: String }

    /// A section.
    public init(key: String, title: String, type: String, locations: [String]) {
        self.key = key
        self.title = title
        self.type = type
        self.locations = locations
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decodeFlexibleString(.key)
        title = try c.decodeIfPresent(String.self, forKey: .title) ?? ""
        type = try c.decodeIfPresent(String.self, forKey: .type) ?? ""
        locations = (try c.decodeIfPresent([Location].self, forKey: .Location) ?? []).map(\.path)
    }

    /// The metadata type number of the section's items (for edits and collections): movie 1,
    /// episode 4 (show sections), track 10, photo 13.
    public var itemType: Int {
        switch type {
        case "show": return 4
        case "artist": return 10
        case "photo": return 13
        default: return 1
        }
    }

    /// Whether one of the section's folders is `path` or contains it.
    public func contains(path: String) -> Bool {
        locations.contains { location in
            let root = location.count > 1 && location.hasSuffix("/") ? String(location.dropLast()) : location
            return path == root || path.hasPrefix(root == "/" ? "/" : root + "/")
        }
    }
}

/// A library item or collection (`Metadata`).
public struct PlexItem: Sendable, Equatable, Decodable {
    /// The item's key.
    public var ratingKey: String
    /// `movie`, `episode`, `collection`, …
    public var type: String?
    public var title: String?
    public var summary: String?
    /// `YYYY-MM-DD`.
    public var originallyAvailableAt: String?
    /// The poster's path on the server, absent when it has none.
    public var thumb: String?
    /// The files of the item's media parts, as the server sees them.
    public var files: [String]

    enum CodingKeys: String, CodingKey { case ratingKey, type, title, summary, originallyAvailableAt, thumb, Media }
    struct Media: Decodable { var Part: [Part]? }
    struct Part: Decodable { var file: String? }

    /// An item.
    public init(
        ratingKey: String, type: String? = nil, title: String? = nil, summary: String? = nil,
        originallyAvailableAt: String? = nil, thumb: String? = nil, files: [String] = []
    ) {
        self.ratingKey = ratingKey
        self.type = type
        self.title = title
        self.summary = summary
        self.originallyAvailableAt = originallyAvailableAt
        self.thumb = thumb
        self.files = files
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ratingKey = try c.decodeFlexibleString(.ratingKey)
        type = try c.decodeIfPresent(String.self, forKey: .type)
        title = try c.decodeIfPresent(String.self, forKey: .title)
        summary = try c.decodeIfPresent(String.self, forKey: .summary)
        originallyAvailableAt = try c.decodeIfPresent(String.self, forKey: .originallyAvailableAt)
        thumb = try c.decodeIfPresent(String.self, forKey: .thumb)
        files = (try c.decodeIfPresent([Media].self, forKey: .Media) ?? []).flatMap { $0.Part ?? [] }.compactMap(\.file)
    }
}

struct PlexEnvelope<Content: Decodable>: Decodable {
    var MediaContainer: Content
}

struct PlexDirectories: Decodable {
    var Directory: [PlexSection]?
}

struct PlexMetadataList: Decodable {
    var Metadata: [PlexItem]?
}

extension KeyedDecodingContainer {
    /// A value Plex writes as a string or a number.
    func decodeFlexibleString(_ key: Key) throws -> String {
        if let text = try? decode(String.self, forKey: key) { return text }
        if let number = try? decode(Int64.self, forKey: key) { return String(number) }
        throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "expected a string or a number")
    }
}
