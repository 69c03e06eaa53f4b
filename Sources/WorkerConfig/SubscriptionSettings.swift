import Foundation
import JSON
import Yams

/// One entry of `subscriptions` (contract section 12): a channel, playlist or feed the cluster
/// re-checks. jobs.yml's entries are upserted by name into the `subscriptions` table at start and
/// on reload; one removed from the file is disabled there, never deleted (nor its files).
package struct SubscriptionSettings: Sendable, Equatable {
    /// Unique name (its key in `subscriptions`).
    package var name: String
    /// The channel, playlist or feed link.
    package var url: String
    /// The user its downloads belong to (`user`).
    package var userId: String?
    /// Quality and format of its downloads; nil: `youtube.quality` / `youtube.format`.
    package var quality: String?
    package var format: String?
    /// Library file name template; nil: `youtube.output`.
    package var output: String?
    /// Plex collection its downloads go into.
    package var collection: String?
    /// Seconds between two checks (`check_every`, default 6 h).
    package var checkEvery: Int
    /// Newest entries taken at the first check (default 10).
    package var backfill: Int
    /// Downloaded videos kept, newest first; nil keeps all.
    package var keepLast: Int?
    /// Seconds a downloaded video is kept after its publication; nil keeps it forever.
    package var maxAge: Int?
    package var enabled: Bool

    package static let defaultCheckEvery = 21_600
    package static let defaultBackfill = 10
    /// Bounds of what a subscription may ask for.
    package static let checkEveryRange = 1...(366 * 86_400)
    package static let backfillRange = 0...5000
    package static let keepLastRange = 1...100_000

    package init(
        name: String, url: String, userId: String? = nil, quality: String? = nil, format: String? = nil,
        output: String? = nil, collection: String? = nil, checkEvery: Int = SubscriptionSettings.defaultCheckEvery,
        backfill: Int = SubscriptionSettings.defaultBackfill, keepLast: Int? = nil, maxAge: Int? = nil, enabled: Bool = true
    ) {
        self.name = name
        self.url = url
        self.userId = userId
        self.quality = quality
        self.format = format
        self.output = output
        self.collection = collection
        self.checkEvery = checkEvery
        self.backfill = backfill
        self.keepLast = keepLast
        self.maxAge = maxAge
        self.enabled = enabled
    }

    /// Why `name` cannot name a subscription, or nil: 1–64 of A-Z a-z 0-9 _ . : - .
    package static func nameProblem(_ name: String) -> String? {
        ConfigLoader.matches(name, allowed: ConfigLoader.prefixCharacters, length: 1...64)
            ? nil
            : "a subscription name is 1–64 of A-Z a-z 0-9 _ . : -, got \(JSONText.quote(String(name.prefix(80)), escapingNonPrintable: true))"
    }

    /// Why `url` cannot be a subscription's source, or nil: an http(s) link with a host.
    package static func urlProblem(_ url: String) -> String? {
        guard url.utf8.count <= 2048, let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = parts.host, !host.isEmpty
        else { return "expected an http or https link of a channel, playlist or feed" }
        return nil
    }

    /// Why `template` cannot be an output template, or nil.
    package static func outputProblem(_ template: String) -> String? { ConfigLoader.outputTemplateProblem(template) }

    /// The queue check jobs and their downloads go on: `youtube` when configured, else `default`,
    /// else the first queue.
    package static func queue(in configuration: WorkerConfiguration) -> String {
        for name in ["youtube", "default"] where configuration.queue(named: name) != nil { return name }
        return configuration.queues.first?.name ?? "default"
    }
}

extension ConfigLoader {
    /// `subscriptions`: a map of names to {url, user, quality, format, output, collection,
    /// check_every, backfill, keep_last, max_age, enabled}.
    static func decodeSubscriptions(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError)
    {
        guard let node = top["subscriptions"] else { return }
        let known = [
            "url", "user", "quality", "format", "output", "collection", "check_every", "backfill", "keep_last", "max_age", "enabled",
        ]
        var out: [SubscriptionSettings] = []
        for entry in try reader.entries(node, key: "subscriptions", expected: "a map of subscription names to their settings") {
            let key = "subscriptions.\(entry.name)"
            if let problem = SubscriptionSettings.nameProblem(entry.name) { throw reader.error(key, problem, at: entry.keyNode) }
            guard let section = try reader.section(entry.value, key: key, known: known) else {
                throw reader.error(key, "missing: the subscription's settings, at least url", at: entry.value)
            }
            let urlNode = try required(section, "url", "the channel, playlist or feed link", reader)
            let url = try reader.text(urlNode, key: section.path("url"), expected: "a link")
            if let problem = SubscriptionSettings.urlProblem(url) {
                throw reader.error(section.path("url"), "\(problem), got \(reader.describe(urlNode, text: url))", at: urlNode)
            }
            var s = SubscriptionSettings(name: entry.name, url: url)
            if let n = section["user"], !reader.isNull(n) {
                s.userId = try reader.text(n, key: section.path("user"), expected: "a user id")
                guard (1...128).contains(s.userId!.utf8.count) else {
                    throw reader.error(section.path("user"), "a user id is 1–128 bytes", at: n)
                }
            }
            if let n = section["quality"], !reader.isNull(n) {
                s.quality = try reader.choice(n, key: section.path("quality"), YouTubeSettings.qualities)
            }
            if let n = section["format"], !reader.isNull(n) {
                s.format = try reader.choice(n, key: section.path("format"), YouTubeSettings.formats)
            }
            if let n = section["output"], !reader.isNull(n) {
                let template = try reader.text(n, key: section.path("output"), expected: "a file name template")
                if let problem = SubscriptionSettings.outputProblem(template) { throw reader.error(section.path("output"), problem, at: n) }
                s.output = template
            }
            if let n = section["collection"], !reader.isNull(n) {
                s.collection = try reader.text(n, key: section.path("collection"), expected: "a Plex collection name")
            }
            if let n = section["check_every"] {
                let range = SubscriptionSettings.checkEveryRange
                let seconds = try reader.duration(n, key: section.path("check_every"), minimum: Double(range.lowerBound), exclusive: false)
                guard seconds <= Double(range.upperBound) else {
                    throw reader.error(section.path("check_every"), "expected at most 366d, got \(reader.describe(n))", at: n)
                }
                s.checkEvery = Int(seconds.rounded())
            }
            if let n = section["backfill"] {
                s.backfill = try reader.int(n, key: section.path("backfill"), range: SubscriptionSettings.backfillRange)
            }
            if let n = section["keep_last"], !reader.isNull(n) {
                s.keepLast = try reader.int(n, key: section.path("keep_last"), range: SubscriptionSettings.keepLastRange)
            }
            if let n = section["max_age"], !reader.isNull(n) {
                s.maxAge = Int(try reader.duration(n, key: section.path("max_age"), minimum: 1, exclusive: false).rounded())
            }
            if let n = section["enabled"] { s.enabled = try reader.bool(n, key: section.path("enabled")) }
            out.append(s)
        }
        configuration.subscriptions = out
    }
}
