import Foundation
import JSON
import RedisClient
import WorkerConfig

/// What `ctl sub` and the control stream ask of subscriptions: list, add, remove, check, protect.
/// Every request is checked here, so a bad one is refused with a sentence and changes nothing.
package struct SubscriptionCommands: Sendable {
    let services: WorkerServices

    package struct Refusal: Error, Sendable, CustomStringConvertible {
        package var description: String
        init(_ description: String) { self.description = description }
    }

    var store: SubscriptionStore { SubscriptionStore(pool: services.postgres) }

    /// Every subscription with its item counts.
    package func list() async throws -> JSONValue {
        let subscriptions = try await store.all()
        let counts = try await store.itemCounts()
        return .array(subscriptions.map { s in Self.describe(s, counts: counts[s.id] ?? [:]) })
    }

    static func describe(_ s: Subscription, counts: [String: Int]) -> JSONValue {
        .object([
            ("id", .string(s.id)), ("name", .string(s.name)), ("url", .string(s.url)),
            ("userId", s.userId.map { .string($0) } ?? .null), ("quality", s.quality.map { .string($0) } ?? .null),
            ("format", s.format.map { .string($0) } ?? .null), ("output", s.output.map { .string($0) } ?? .null),
            ("collection", s.collection.map { .string($0) } ?? .null), ("checkEvery", .number(String(s.checkEvery))),
            ("backfill", .number(String(s.backfill))), ("keepLast", s.keepLast.map { .number(String($0)) } ?? .null),
            ("maxAge", s.maxAge.map { .number(String($0)) } ?? .null), ("enabled", .bool(s.enabled)),
            ("lastCheckedAt", s.lastCheckedAt.map { .string($0) } ?? .null), ("lastError", s.lastError.map { .string($0) } ?? .null),
            ("definedIn", s.definedIn.map { .string($0) } ?? .null),
            ("items", .object(SubscriptionItemState.allCases.map { ($0.rawValue, .number(String(counts[$0.rawValue] ?? 0))) })),
        ])
    }

    /// Adds a subscription from a request's fields (`url`, and optional `name`, `every`, `keepLast`,
    /// `maxAge`, `quality`, `format`, `user`, `backfill`, `output`, `collection`); its first check
    /// is enqueued at once.
    package func add(_ request: JSONValue) async throws -> JSONValue {
        func text(_ key: String) throws(Refusal) -> String? {
            switch request[key] {
            case nil, .null?: return nil
            case .string(let s)?: return s
            case let other?: throw Refusal("\(key) must be a string, not \(other.kind)")
            }
        }
        guard let url = try text("url"), !url.isEmpty else { throw Refusal("sub add needs the link of a channel, playlist or feed") }
        if let problem = SubscriptionSettings.urlProblem(url) {
            throw Refusal("\(problem), got \(JSONText.quote(String(url.prefix(200))))")
        }
        let name = try text("name") ?? Self.name(for: url)
        if let problem = SubscriptionSettings.nameProblem(name) { throw Refusal(problem) }
        var s = SubscriptionSettings(name: name, url: url)
        s.userId = try text("user")
        if let user = s.userId, !(1...128).contains(user.utf8.count) { throw Refusal("user must be 1–128 bytes") }
        if let q = try text("quality") {
            guard YouTubeSettings.qualities.contains(q) else {
                throw Refusal("quality must be one of \(YouTubeSettings.qualities.joined(separator: ", "))")
            }
            s.quality = q
        }
        if let f = try text("format") {
            guard YouTubeSettings.formats.contains(f) else {
                throw Refusal("format must be one of \(YouTubeSettings.formats.joined(separator: ", "))")
            }
            s.format = f
        }
        if let output = try text("output") {
            if let problem = SubscriptionSettings.outputProblem(output) { throw Refusal("output: \(problem)") }
            s.output = output
        }
        s.collection = try text("collection")
        if let every = try text("every") {
            guard let seconds = DurationParser.parse(every), SubscriptionSettings.checkEveryRange.contains(Int(seconds.rounded())) else {
                throw Refusal(
                    "every must be a duration such as 30m, 6h or 1d (at most 366d), got \(JSONText.quote(String(every.prefix(40))))")
            }
            s.checkEvery = Int(seconds.rounded())
        }
        if let maxAge = try text("maxAge") {
            guard let seconds = DurationParser.parse(maxAge), seconds >= 1 else {
                throw Refusal("max-age must be a duration such as 30d, got \(JSONText.quote(String(maxAge.prefix(40))))")
            }
            s.maxAge = Int(seconds.rounded())
        }
        for (key, range, label) in [
            ("keepLast", SubscriptionSettings.keepLastRange, "keep-last"), ("backfill", SubscriptionSettings.backfillRange, "backfill"),
        ] {
            switch request[key] {
            case nil, .null?: continue
            case .number(let n)? where Int(n).map(range.contains) == true:
                if key == "keepLast" { s.keepLast = Int(n) } else { s.backfill = Int(n)! }
            default: throw Refusal("\(label) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
        }
        guard let added = try await store.add(s, id: UUID().uuidString.lowercased()) else {
            throw Refusal("a subscription named \(JSONText.quote(name)) exists already; choose another --name")
        }
        _ = try await check(added, tag: "first")
        return Self.describe(added, counts: [:])
    }

    /// A name from a link: its host and path, in the characters names allow.
    static func name(for url: String) -> String {
        let parts = URLComponents(string: url)
        let raw = ((parts?.host ?? "") + (parts?.path ?? "")).replacingOccurrences(of: "www.", with: "")
        var out = ""
        for c in raw {
            if c.isASCII && (c.isLetter || c.isNumber || "_.:-".contains(c)) {
                out.append(c)
            } else if !out.hasSuffix("-") {
                out.append("-")
            }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return String((out.isEmpty ? "subscription" : out).prefix(64))
    }

    func find(_ reference: String) async throws -> Subscription {
        guard let s = try await store.find(reference) else {
            throw Refusal("no subscription named \(JSONText.quote(String(reference.prefix(80)))); see ctl sub list")
        }
        return s
    }

    /// Deletes a subscription and its items; its files stay in the library.
    package func remove(_ reference: String) async throws -> JSONValue {
        let s = try await find(reference)
        if s.definedIn == SubscriptionStore.fileOrigin {
            throw Refusal("\(s.name) is defined in jobs.yml; remove it there and reload (it is then disabled, its files kept)")
        }
        _ = try await store.remove(id: s.id)
        _ = try? await services.redis.send(RedisCommand(["DEL", services.queue.keys.subscription(s.id)]))
        return .object([("id", .string(s.id)), ("name", .string(s.name)), ("removed", .bool(true)), ("filesKept", .bool(true))])
    }

    /// Enqueues a check now; its job id is `subscription:<id>:<tag>` (`manual:<ms>` by default, the
    /// control entry for a command of the control stream, so every daemon that reads it sends one
    /// job). Returns the job id.
    package func check(_ reference: String, tag: String? = nil) async throws -> String {
        try await check(try await find(reference), tag: tag)
    }

    func check(_ s: Subscription, tag: String?) async throws -> String {
        guard s.enabled else { throw Refusal("\(s.name) is disabled; nothing to check") }
        return try await SubscriptionCheckHandler.enqueue(s, tag: tag ?? "manual:\(Timestamp.nowMilliseconds())", services: services)
    }

    /// Protects an item from retention (or lifts the protection).
    package func protect(_ reference: String, videoKey: String, protected: Bool) async throws -> JSONValue {
        let s = try await find(reference)
        guard try await store.protect(subscriptionId: s.id, videoKey: videoKey, protected: protected) else {
            throw Refusal(
                "\(s.name) has no item \(JSONText.quote(String(videoKey.prefix(200)))); the keys are in ctl sub list --json or subscription_items"
            )
        }
        return .object([("name", .string(s.name)), ("videoKey", .string(videoKey)), ("protected", .bool(protected))])
    }
}
