import Foundation

/// One segment of a video as the SponsorBlock API gives it.
public struct SponsorSegment: Sendable, Equatable {
    /// Seconds from the start of the video.
    public var start: Double
    public var end: Double
    /// `sponsor`, `selfpromo`, `intro`, `outro`, ...
    public var category: String
    /// `skip`, `mute`, `poi`, `chapter`, `full`.
    public var actionType: String
    public var uuid: String

    public init(start: Double, end: Double, category: String, actionType: String = "skip", uuid: String = "") {
        self.start = start
        self.end = end
        self.category = category
        self.actionType = actionType
        self.uuid = uuid
    }
}

/// `GET <api>/api/skipSegments` of the SponsorBlock API, under the service name `sponsorblock`.
public struct SponsorBlockClient: Sendable {
    /// The service name used for breakers and metrics.
    public static let service = "sponsorblock"
    /// Categories the public API knows.
    public static let categories: Set<String> = [
        "sponsor", "selfpromo", "interaction", "intro", "outro", "preview", "music_offtopic", "filler", "exclusive_access",
        "poi_highlight", "chapter",
    ]
    /// At most this many segments are read from one answer; the rest are left out.
    public static let maxSegments = 10_000

    public let api: String
    let caller: ServiceCaller
    public var policy: CallPolicy
    public var breakerPolicy: BreakerPolicy

    public init(
        api: String, caller: ServiceCaller, policy: CallPolicy = CallPolicy(timeout: 10, retries: 1),
        breakerPolicy: BreakerPolicy = BreakerPolicy()
    ) {
        self.api = api
        self.caller = caller
        self.policy = policy
        self.breakerPolicy = breakerPolicy
    }

    /// The segments of `videoID` in `categories`; a 404 (the API's answer for "none") is an empty list.
    /// Entries that are not a well-formed segment are skipped; a body that is not a JSON array throws.
    public func segments(videoID: String, categories: [String]) async throws -> [SponsorSegment] {
        let cats = "[" + categories.map { "\"\($0)\"" }.joined(separator: ",") + "]"
        let url = URLBuilder.url(base: api, path: "/api/skipSegments", query: [("videoID", videoID), ("categories", cats)])
        let response: HTTPResponse
        do {
            response = try await caller.call(
                HTTPRequest(method: "GET", url: url, headers: [("Accept", "application/json")], body: nil),
                service: Self.service, policy: policy, breakerPolicy: breakerPolicy)
        } catch let error as ServiceError where error.httpStatus == 404 {
            return []
        }
        return try Self.parse(response.body)
    }

    static func parse(_ body: [UInt8]) throws(ServiceError) -> [SponsorSegment] {
        guard let array = (try? JSONSerialization.jsonObject(with: Data(body))) as? [Any] else {
            throw .invalidResponse(service: service, reason: "expected a JSON array of segments")
        }
        var out: [SponsorSegment] = []
        for item in array.prefix(maxSegments) {
            guard let o = item as? [String: Any], let seg = o["segment"] as? [Any], seg.count == 2,
                let a = (seg[0] as? NSNumber)?.doubleValue, let b = (seg[1] as? NSNumber)?.doubleValue,
                let category = o["category"] as? String
            else { continue }
            out.append(
                SponsorSegment(
                    start: a, end: b, category: category, actionType: o["actionType"] as? String ?? "skip",
                    uuid: o["UUID"] as? String ?? ""))
        }
        return out
    }
}
