import Foundation
import JSON
import Testing
import WorkerConfig
import YtDlp

@testable import WorkerCore

@Suite("Subscription checks and retention, the pure part")
struct SubscriptionPlanTests {
    func listing(_ json: String) throws -> PlaylistInfo {
        guard case .playlist(let p) = try Extraction.parse(Array(json.utf8)) else { throw JobFailure.permanent("not a playlist") }
        return p
    }

    func entry(_ key: String, live: Bool = false, at t: Double? = nil) -> SubscriptionPlan.Listed {
        SubscriptionPlan.Listed(videoKey: key, url: "https://www.youtube.com/watch?v=\(key)", title: key, timestamp: t, live: live)
    }

    @Test func keysComeFromTheExtractorAndTheIdOrTheSmuggledGuid() throws {
        let p = try listing(
            """
            {"_type":"playlist","id":"UC1","extractor":"youtube:tab","entries":[
              {"_type":"url","ie_key":"Youtube","id":"abc","url":"https://www.youtube.com/watch?v=abc","live_status":"is_upcoming"},
              {"_type":"url_transparent","url":"http://127.0.0.1/media/one.mp4#__youtubedl_smuggle=%7B%22force_videoid%22%3A+%22item-1%22%7D"},
              {"_type":"url","url":"http://127.0.0.1/media/two.mp4"},
              {"_type":"url","ie_key":"Youtube","id":"abc","url":"https://www.youtube.com/watch?v=abc"},
              {"_type":"url","ie_key":"YoutubeTab","id":"UC1","url":"https://www.youtube.com/@x/shorts"}
            ]}
            """)
        let listed = SubscriptionPlan.listed(p)
        #expect(listed.count == 4, "the repeated entry is listed once")
        #expect(listed[3].nested && !listed[0].nested && !listed[1].nested)
        let plan = SubscriptionPlan.plan(listed, known: [:], firstCheck: false, backfill: 10)
        #expect(plan.new[3].state == .skipped && plan.new[3].reason == SubscriptionPlan.nestedReason, "a channel's tab is never downloaded")
        #expect(listed[0].videoKey == "youtube:abc" && listed[0].live)
        #expect(listed[1].videoKey == "youtube:tab:item-1")
        #expect(listed[2].videoKey.hasPrefix("youtube:tab:url-"))
        #expect(SubscriptionPlan.listed(p)[2].videoKey == listed[2].videoKey, "a link's hash is the same every time")
    }

    @Test func timestampsOrderTheListingNewestFirstOnlyWhenEveryEntryHasOne() throws {
        let all = try listing(
            """
            {"_type":"playlist","id":"f","extractor":"generic","entries":[
              {"id":"a","url":"u-a","timestamp":100},{"id":"b","url":"u-b","timestamp":300},{"id":"c","url":"u-c","timestamp":200}]}
            """)
        #expect(SubscriptionPlan.listed(all).map(\.videoKey) == ["generic:b", "generic:c", "generic:a"])
        let some = try listing(
            """
            {"_type":"playlist","id":"f","extractor":"generic","entries":[
              {"id":"a","url":"u-a","timestamp":100},{"id":"b","url":"u-b"},{"id":"c","url":"u-c","timestamp":200}]}
            """)
        #expect(SubscriptionPlan.listed(some).map(\.videoKey) == ["generic:a", "generic:b", "generic:c"])
    }

    @Test func theFirstCheckTakesTheBackfillAndSkipsTheRestAndLiveOnes() {
        let listed = [entry("n1"), entry("live", live: true), entry("n2"), entry("n3"), entry("n4")]
        let plan = SubscriptionPlan.plan(listed, known: [:], firstCheck: true, backfill: 2)
        #expect(plan.new.map(\.listed.videoKey) == ["n1", "live", "n2", "n3", "n4"])
        #expect(plan.new.map(\.state) == [.queued, .skipped, .queued, .skipped, .skipped])
        #expect(plan.new[1].reason == SubscriptionPlan.liveReason)
        #expect(plan.new[3].reason == SubscriptionPlan.backfillReason(2))
        #expect(plan.requeue.isEmpty)
        #expect(SubscriptionPlan.plan(listed, known: [:], firstCheck: true, backfill: 0).new.allSatisfy { $0.state == .skipped })
    }

    @Test func laterChecksTakeEveryUnseenEntryAndALiveOneOnceItIsOver() {
        let known: [String: (state: SubscriptionItemState, reason: String?)] = [
            "old": (.downloaded, nil), "was-live": (.skipped, SubscriptionPlan.liveReason),
            "still-live": (.skipped, SubscriptionPlan.liveReason), "backfilled": (.skipped, SubscriptionPlan.backfillReason(1)),
            "gone": (.removed, "beyond keep_last 1"),
        ]
        let listed = [
            entry("new1"), entry("new2"), entry("was-live"), entry("still-live", live: true), entry("backfilled"), entry("old"),
            entry("gone"),
        ]
        let plan = SubscriptionPlan.plan(listed, known: known, firstCheck: false, backfill: 1)
        #expect(plan.new.map(\.listed.videoKey) == ["new1", "new2"], "after the first check every unseen entry is taken")
        #expect(plan.new.allSatisfy { $0.state == .queued })
        #expect(plan.requeue == ["was-live"], "a skipped backfill entry and a removed one are never taken again")
    }

    func item(_ key: String, age: Double, state: SubscriptionItemState = .downloaded, protected: Bool = false) -> SubscriptionItem {
        SubscriptionItem(
            videoKey: key, state: state, reason: nil, title: nil, publishedAt: age, firstSeenAt: 0, protected: protected, path: nil,
            sidecars: [], size: nil, duplicate: false, jobId: nil)
    }

    @Test func keepLastRemovesTheOldestButNeverAProtectedOne() {
        let items = [
            item("v1", age: 100, protected: true), item("v2", age: 200), item("v3", age: 300), item("v4", age: 400),
            item("v5", age: 500), item("q", age: 600, state: .queued), item("r", age: 50, state: .removed),
        ]
        let doomed = SubscriptionPlan.retention(items, keepLast: 3, maxAge: nil, now: 1000)
        #expect(doomed.map(\.item.videoKey) == ["v2"])
        #expect(doomed[0].reason == "beyond keep_last 3")
        #expect(SubscriptionPlan.retention(items, keepLast: nil, maxAge: nil, now: 1000).isEmpty)
        #expect(SubscriptionPlan.retention(items, keepLast: 10, maxAge: nil, now: 1000).isEmpty)
    }

    @Test func maxAgeRemovesWhatWasPublishedTooLongAgoAndFallsBackToFirstSight() {
        var unknownDate = item("nodate", age: 0)
        unknownDate.publishedAt = nil
        unknownDate.firstSeenAt = 950
        let items = [item("a", age: 100), item("b", age: 800), item("c", age: 10, protected: true), unknownDate]
        let doomed = SubscriptionPlan.retention(items, keepLast: nil, maxAge: 500, now: 1000)
        #expect(doomed.map(\.item.videoKey) == ["a"])
        #expect(doomed[0].reason.hasPrefix("older than max_age"))
    }

    @Test func downloadIdsAreStableAndValid() {
        let id = "3f2c1e9a-8b7d-4c6e-9f01-23456789abcd"
        let job = SubscriptionPlan.downloadJobID(subscriptionId: id, videoKey: "youtube:dQw4w9WgXcQ")
        #expect(job == "subscription:\(id):video:youtube:dQw4w9WgXcQ")
        let odd = SubscriptionPlan.downloadJobID(subscriptionId: id, videoKey: "generic:a/b c?" + String(repeating: "x", count: 100))
        #expect(JobEnvelope.isValidID(odd) && odd.hasPrefix("subscription:\(id):video:"))
        #expect(
            SubscriptionPlan.downloadID(subscriptionId: id, videoKey: "youtube:x")
                == SubscriptionPlan.downloadID(subscriptionId: id, videoKey: "youtube:x"))
        #expect(UUID(uuidString: SubscriptionPlan.downloadID(subscriptionId: id, videoKey: "youtube:x")) != nil)
    }

    @Test func ticksAreShiftedByAStableOffsetAndFoldMissedOnes() {
        let interval: Int64 = 60_000
        let offset = SubscriptionTicker.offset("sub-a", interval: interval)
        #expect(offset >= 0 && offset < interval && offset == SubscriptionTicker.offset("sub-a", interval: interval))
        let base: Int64 = 1_700_000_000_000 - (1_700_000_000_000 % interval) + offset
        #expect(SubscriptionTicker.due(interval: interval, offset: offset, last: base, now: base + 59_999) == nil)
        let due = SubscriptionTicker.due(interval: interval, offset: offset, last: base, now: base + 3 * interval + 5)
        #expect(due?.tick == base + 3 * interval && due?.skipped == 2)
    }

    @Test func theRequestCarriesTheSubscriptionAndChecksItsTemplate() throws {
        var c = WorkerConfiguration()
        c.youtube.allowedHosts = ["127.0.0.1"]
        let ok = try YouTubeRequest(
            payload: JSONValue.parse(
                #"{"url":"http://127.0.0.1/a.mp4#__youtubedl_smuggle=%7B%7D","subscription":{"id":"s1","name":"n","videoKey":"generic:a","output":"{playlist}/{title}.{ext}"}}"#
            )!, jobId: "j", userId: nil, configuration: c)
        #expect(
            ok.subscription
                == YouTubeRequest.SubscriptionRef(id: "s1", name: "n", videoKey: "generic:a", output: "{playlist}/{title}.{ext}"))
        #expect(ok.source.url.contains("__youtubedl_smuggle"), "a subscription's entry keeps its smuggled id")
        #expect(throws: JobFailure.self) {
            try YouTubeRequest(
                payload: JSONValue.parse(
                    #"{"url":"http://127.0.0.1/a.mp4","subscription":{"id":"s1","videoKey":"k","output":"/abs/{ext}"}}"#)!,
                jobId: "j", userId: nil, configuration: c)
        }
        #expect(throws: JobFailure.self) {
            try YouTubeRequest.schema.check(JSONValue.parse(#"{"url":"u","subscription":{"id":1,"videoKey":"k"}}"#)!)
        }
    }
}
