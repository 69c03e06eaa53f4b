import Foundation
import YtDlp

/// A subscription as the `subscriptions` table holds it (contract section 12).
package struct Subscription: Sendable, Equatable {
    package var id: String
    package var name: String
    package var url: String
    package var userId: String?
    package var quality: String?
    package var format: String?
    package var output: String?
    package var collection: String?
    /// Seconds.
    package var checkEvery: Int
    package var backfill: Int
    package var keepLast: Int?
    /// Seconds.
    package var maxAge: Int?
    package var enabled: Bool
    /// RFC 3339, nil before the first check.
    package var lastCheckedAt: String?
    package var lastError: String?
    /// `jobs.yml` for subscriptions of the file, nil for the API's and `ctl sub add`'s.
    package var definedIn: String?
}

/// What became of one entry a check saw (contract: `queued` · `downloaded` · `skipped` · `failed` · `removed`).
package enum SubscriptionItemState: String, Sendable, CaseIterable {
    case queued, downloaded, skipped, failed, removed
}

/// One row of `subscription_items`, as retention and `ctl` read it.
package struct SubscriptionItem: Sendable, Equatable {
    package var videoKey: String
    package var state: SubscriptionItemState
    package var reason: String?
    package var title: String?
    /// Epoch seconds.
    package var publishedAt: Double?
    /// Epoch seconds.
    package var firstSeenAt: Double
    package var protected: Bool
    package var path: String?
    package var sidecars: [String]
    package var size: Int64?
    package var duplicate: Bool
    package var jobId: String?

    /// When it appeared: its publication, else when a check first saw it.
    var age: Double { publishedAt ?? firstSeenAt }
}

/// The pure part of a check and of retention: which entries to take, which items to remove.
package enum SubscriptionPlan {
    /// One entry of the listing, as a check reads it.
    package struct Listed: Sendable, Equatable {
        package var videoKey: String
        package var url: String
        package var title: String?
        /// Epoch seconds.
        package var timestamp: Double?
        package var live: Bool
        /// A playlist or channel tab listed inside the source (a channel's home lists its tabs).
        package var nested: Bool = false
    }

    /// A new item: queued for download or skipped, with why.
    package struct NewItem: Sendable, Equatable {
        package var listed: Listed
        package var state: SubscriptionItemState
        package var reason: String?
    }

    /// Why entries are skipped. A live or upcoming entry is looked at again by later checks and
    /// queued once it is over.
    package static let liveReason = "live or upcoming when checked; taken once it has ended"
    package static let nestedReason =
        "a playlist or channel tab inside the source, not a video; subscribe to it (e.g. the channel's /videos) instead"
    package static func backfillReason(_ n: Int) -> String { "older than the first check's backfill of \(n)" }

    /// `<extractor>:<id>` of an entry: the extractor that downloads it (else the listing's), and its
    /// id (else the id smuggled into its link, else a hash of the link).
    package static func videoKey(_ entry: PlaylistEntry, listingExtractor: String) -> String {
        let extractor = (entry.ieKey ?? listingExtractor).lowercased()
        if let id = entry.stableID { return "\(extractor):\(id)" }
        let link = entry.url.split(separator: "#", maxSplits: 1).first.map(String.init) ?? entry.url
        return "\(extractor):url-\(DerivedID.uuid("link:" + link))"
    }

    /// The listing's entries, newest first and each once: by timestamp when every entry has one,
    /// else in the listing's order (channels and feeds list their newest first).
    package static func listed(_ playlist: PlaylistInfo) -> [Listed] {
        var seen = Set<String>()
        var out: [Listed] = []
        for entry in playlist.entries {
            let key = videoKey(entry, listingExtractor: playlist.extractor)
            guard seen.insert(key).inserted else { continue }
            out.append(
                Listed(
                    videoKey: key, url: entry.url, title: entry.title, timestamp: entry.timestamp, live: entry.isLiveOrUpcoming,
                    nested: entry.isPlaylist))
        }
        if !out.isEmpty, out.allSatisfy({ $0.timestamp != nil }) {
            out = out.enumerated().sorted { a, b in
                a.element.timestamp! != b.element.timestamp! ? a.element.timestamp! > b.element.timestamp! : a.offset < b.offset
            }.map(\.element)
        }
        return out
    }

    /// What a check does with the listing: entries never seen become items (the newest `backfill`
    /// at the first check queued and the older ones skipped; afterwards every one queued), live and
    /// upcoming ones skipped; seen entries skipped as live that are over now are queued again.
    package static func plan(
        _ listed: [Listed], known: [String: (state: SubscriptionItemState, reason: String?)], firstCheck: Bool, backfill: Int
    ) -> (new: [NewItem], requeue: [String]) {
        var new: [NewItem] = []
        var requeue: [String] = []
        var taken = 0
        for entry in listed {
            if let item = known[entry.videoKey] {
                if item.state == .skipped, item.reason == liveReason, !entry.live { requeue.append(entry.videoKey) }
                continue
            }
            if entry.nested {
                new.append(NewItem(listed: entry, state: .skipped, reason: nestedReason))
            } else if entry.live {
                new.append(NewItem(listed: entry, state: .skipped, reason: liveReason))
            } else if firstCheck && taken >= backfill {
                new.append(NewItem(listed: entry, state: .skipped, reason: backfillReason(backfill)))
            } else {
                taken += 1
                new.append(NewItem(listed: entry, state: .queued, reason: nil))
            }
        }
        return (new, requeue)
    }

    /// Downloaded items retention removes, with why: beyond the newest `keepLast` (by publication,
    /// else first sight) or published longer than `maxAge` seconds before `now`; never a protected one.
    package static func retention(
        _ items: [SubscriptionItem], keepLast: Int?, maxAge: Int?, now: Double
    ) -> [(item: SubscriptionItem, reason: String)] {
        guard keepLast != nil || maxAge != nil else { return [] }
        let downloaded = items.filter { $0.state == .downloaded }.enumerated().sorted { a, b in
            a.element.age != b.element.age ? a.element.age > b.element.age : a.offset < b.offset
        }.map(\.element)
        var out: [(SubscriptionItem, String)] = []
        for (rank, item) in downloaded.enumerated() where !item.protected {
            if let keepLast, rank >= keepLast {
                out.append((item, "beyond keep_last \(keepLast)"))
            } else if let maxAge, now - item.age > Double(maxAge) {
                out.append((item, "older than max_age \(maxAge) s"))
            }
        }
        return out
    }

    /// The job id of an item's download: `subscription:<id>:video:<key>`, or the key hashed when
    /// that would not be a valid job id.
    package static func downloadJobID(subscriptionId: String, videoKey: String) -> String {
        let plain = "subscription:\(subscriptionId):video:\(videoKey)"
        if JobEnvelope.isValidID(plain) { return plain }
        return "subscription:\(subscriptionId):video:\(DerivedID.uuid("video:" + videoKey))"
    }

    /// The `youtube_downloads` id of an item's download.
    package static func downloadID(subscriptionId: String, videoKey: String) -> String {
        DerivedID.uuid("subscription:\(subscriptionId):\(videoKey)")
    }
}
