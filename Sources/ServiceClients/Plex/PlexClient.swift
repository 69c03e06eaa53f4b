/// The Plex Media Server calls the daemon makes. Every request carries the token in the
/// `X-Plex-Token` header (never in the URL, so it cannot leak through a logged URL) and asks for
/// JSON; it goes through the ``ServiceCaller`` under the service name `plex`.
public struct PlexClient: Sendable {
    /// The service name used for breakers and metrics.
    public static let service = "plex"

    /// The server's base URL.
    public let url: String
    let token: String
    let caller: ServiceCaller
    /// How each request is made.
    public var policy: CallPolicy
    /// How the `plex` breaker behaves.
    public var breakerPolicy: BreakerPolicy
    let observe: (@Sendable (String) -> Void)?

    /// A client of the server at `url` authenticating with `token`; `observe` is told of each request's outcome.
    public init(
        url: String, token: String, caller: ServiceCaller, policy: CallPolicy = CallPolicy(),
        breakerPolicy: BreakerPolicy = BreakerPolicy(), observe: (@Sendable (String) -> Void)? = nil
    ) {
        self.url = url
        self.token = token
        self.caller = caller
        self.policy = policy
        self.breakerPolicy = breakerPolicy
        self.observe = observe
    }

    /// The request for `path` with the token and JSON headers.
    public func request(
        _ method: String, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil,
        contentType: String? = nil
    ) -> HTTPRequest {
        var headers = [
            ("Accept", "application/json"), ("X-Plex-Token", token),
            ("X-Plex-Product", "medianest-worker"), ("X-Plex-Client-Identifier", "medianest-worker"),
        ]
        if let contentType { headers.append(("Content-Type", contentType)) }
        return HTTPRequest(method: method, url: URLBuilder.url(base: url, path: path, query: query), headers: headers, body: body)
    }

    @discardableResult
    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await caller.call(request, service: Self.service, policy: policy, breakerPolicy: breakerPolicy, observe: observe)
    }

    // MARK: - Server and sections

    /// `GET /identity`: the machine identifier and version.
    public func identity() async throws -> PlexIdentity {
        try await send(request("GET", "/identity")).decode(PlexEnvelope<PlexIdentity>.self, service: Self.service).MediaContainer
    }

    /// `GET /library/sections`.
    public func sections() async throws -> [PlexSection] {
        try await send(request("GET", "/library/sections")).decode(PlexEnvelope<PlexDirectories>.self, service: Self.service)
            .MediaContainer.Directory ?? []
    }

    /// The section named `name` (its title, case-insensitive, or its key) when given; otherwise the
    /// section with a folder that contains `remotePath` (the deepest such folder wins).
    public func section(named name: String?, containing remotePath: String) async throws -> PlexSection {
        let all = try await sections()
        if let name, !name.isEmpty {
            if let match = all.first(where: { $0.title.caseInsensitiveCompare(name) == .orderedSame || $0.key == name }) {
                return match
            }
            let known = all.map { "'\($0.title)'" }.joined(separator: ", ")
            throw ServiceError.missing(
                service: Self.service, what: "library section '\(name)' (plex.section); it has \(known.isEmpty ? "none" : known)")
        }
        let candidates = all.filter { $0.contains(path: remotePath) }
        guard let best = candidates.max(by: { ($0.locations.map(\.count).max() ?? 0) < ($1.locations.map(\.count).max() ?? 0) }) else {
            throw ServiceError.missing(
                service: Self.service,
                what: "library section with a folder containing \(remotePath); set plex.section or plex.path_map")
        }
        return best
    }

    /// `GET /library/sections/{key}/refresh[?path=]`: scans one folder (as the server sees it), or the whole section.
    public func refresh(section: String, path: String?) async throws {
        try await send(request("GET", "/library/sections/\(URLBuilder.encode(section))/refresh", query: path.map { [("path", $0)] } ?? []))
    }

    // MARK: - Items

    /// The most recently added items of a section, newest first.
    public func recentlyAdded(section: String, limit: Int = 100) async throws -> [PlexItem] {
        try await metadata(
            request(
                "GET", "/library/sections/\(URLBuilder.encode(section))/recentlyAdded",
                query: [("X-Plex-Container-Start", "0"), ("X-Plex-Container-Size", String(limit))]))
    }

    /// Every item of a section of items of `type`.
    public func allItems(section: String, type: Int) async throws -> [PlexItem] {
        try await metadata(request("GET", "/library/sections/\(URLBuilder.encode(section))/all", query: [("type", String(type))]))
    }

    /// The item whose media file is `remoteFile`: looked for among the recently added items, and
    /// among all of the section's items when `thorough`.
    public func findItem(section: PlexSection, file remoteFile: String, thorough: Bool) async throws -> PlexItem? {
        if let item = try await recentlyAdded(section: section.key).first(where: { $0.files.contains(remoteFile) }) {
            return item
        }
        guard thorough else { return nil }
        return try await allItems(section: section.key, type: section.itemType).first(where: { $0.files.contains(remoteFile) })
    }

    /// `GET /library/metadata/{ratingKey}`.
    public func item(ratingKey: String) async throws -> PlexItem? {
        try await metadata(request("GET", "/library/metadata/\(URLBuilder.encode(ratingKey))")).first
    }

    /// Sets fields of an item and locks them so that agents keep them: `fields` are names such as
    /// `title`, `summary`, `originallyAvailableAt` and their values.
    public func edit(section: PlexSection, ratingKey: String, fields: [(String, String)]) async throws {
        guard !fields.isEmpty else { return }
        var query = [("type", String(section.itemType)), ("id", ratingKey), ("includeExternalMedia", "1")]
        for (name, value) in fields {
            query.append(("\(name).value", value))
            query.append(("\(name).locked", "1"))
        }
        try await send(request("PUT", "/library/sections/\(URLBuilder.encode(section.key))/all", query: query))
    }

    /// Uploads `image` (JPEG, PNG or WebP bytes) as the item's poster.
    public func uploadPoster(ratingKey: String, image: [UInt8]) async throws {
        let type: String
        if image.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
            type = "image/png"
        } else if image.count > 12, image[8..<12].elementsEqual("WEBP".utf8) {
            type = "image/webp"
        } else {
            type = "image/jpeg"
        }
        try await send(request("POST", "/library/metadata/\(URLBuilder.encode(ratingKey))/posters", body: image, contentType: type))
    }

    /// Makes the image at `imageURL` (http or https) the item's poster.
    public func setPoster(ratingKey: String, imageURL: String) async throws {
        try await send(request("POST", "/library/metadata/\(URLBuilder.encode(ratingKey))/posters", query: [("url", imageURL)]))
    }

    // MARK: - Collections

    /// The collections of a section.
    public func collections(section: String) async throws -> [PlexItem] {
        try await metadata(request("GET", "/library/sections/\(URLBuilder.encode(section))/collections"))
    }

    /// The items of a collection.
    public func collectionItems(collection: String) async throws -> [PlexItem] {
        try await metadata(request("GET", "/library/collections/\(URLBuilder.encode(collection))/children"))
    }

    /// The `server://` URI of an item, as collection calls take it.
    public static func itemURI(machineIdentifier: String, ratingKey: String) -> String {
        "server://\(machineIdentifier)/com.plexapp.plugins.library/library/metadata/\(ratingKey)"
    }

    /// Creates a (non-smart) collection holding one item; returns the collection's rating key.
    public func createCollection(section: PlexSection, title: String, ratingKey: String, machineIdentifier: String) async throws -> String {
        let response = try await send(
            request(
                "POST", "/library/collections",
                query: [
                    ("type", String(section.itemType)), ("title", title), ("smart", "0"), ("sectionId", section.key),
                    ("uri", Self.itemURI(machineIdentifier: machineIdentifier, ratingKey: ratingKey)),
                ]))
        let created = try response.decode(PlexEnvelope<PlexMetadataList>.self, service: Self.service).MediaContainer.Metadata ?? []
        guard let key = created.first?.ratingKey else {
            throw ServiceError.invalidResponse(service: Self.service, reason: "the new collection's key is missing")
        }
        return key
    }

    /// Adds an item to a collection.
    public func addToCollection(collection: String, ratingKey: String, machineIdentifier: String) async throws {
        try await send(
            request(
                "PUT", "/library/collections/\(URLBuilder.encode(collection))/items",
                query: [("uri", Self.itemURI(machineIdentifier: machineIdentifier, ratingKey: ratingKey))]))
    }

    /// Puts an item in the collection titled `title` (made when missing); returns the collection's
    /// rating key. An item already in it is left as it is.
    public func ensureInCollection(section: PlexSection, title: String, ratingKey: String) async throws -> String {
        let existing = try await collections(section: section.key).first { ($0.title ?? "").caseInsensitiveCompare(title) == .orderedSame }
        let machine = try await identity().machineIdentifier
        guard let collection = existing else {
            return try await createCollection(section: section, title: title, ratingKey: ratingKey, machineIdentifier: machine)
        }
        let members = try await collectionItems(collection: collection.ratingKey)
        if !members.contains(where: { $0.ratingKey == ratingKey }) {
            try await addToCollection(collection: collection.ratingKey, ratingKey: ratingKey, machineIdentifier: machine)
        }
        return collection.ratingKey
    }

    private func metadata(_ request: HTTPRequest) async throws -> [PlexItem] {
        try await send(request).decode(PlexEnvelope<PlexMetadataList>.self, service: Self.service).MediaContainer.Metadata ?? []
    }
}
