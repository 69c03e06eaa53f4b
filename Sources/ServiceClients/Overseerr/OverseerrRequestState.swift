import Foundation

/// Where a request stands in Overseerr (`GET /api/v1/request/{id}`).
///
/// Overseerr's codes (server/constants/media.ts): request status 1 pending approval, 2 approved,
/// 3 declined, 4 failed (newer versions: the request could not be sent to Radarr/Sonarr),
/// 5 completed; media status 1 unknown, 2 pending, 3 processing, 4 partially available,
/// 5 available, 6 deleted.
public struct OverseerrRequestState: Sendable, Equatable {
    /// Overseerr's request id.
    public var id: String
    /// The request's status code.
    public var status: Int
    /// The media's status code (for a 4K request, the 4K status); nil when the answer has no media.
    public var mediaStatus: Int?
    /// Who last changed the request (the admin who approved or declined it), when Overseerr says.
    public var modifiedBy: String?

    /// A request state.
    public init(id: String, status: Int, mediaStatus: Int?, modifiedBy: String? = nil) {
        self.id = id
        self.status = status
        self.mediaStatus = mediaStatus
        self.modifiedBy = modifiedBy
    }
}

extension OverseerrClient {
    /// `GET /api/v1/request/{id}`: the request's status and its media's status; nil when Overseerr
    /// answers 404 (no such request: deleted in Overseerr, or never made there).
    ///
    /// Other 4xx answers throw a non-retryable ``ServiceError``; 5xx answers and connection errors
    /// are tried again by the caller and count against the `overseerr` breaker.
    public func requestState(id: String) async throws -> OverseerrRequestState? {
        let escaped = id.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? id
        let response: HTTPResponse
        do {
            response = try await caller.call(
                request("GET", "/request/" + escaped), service: Self.service, policy: policy,
                breakerPolicy: breakerPolicy, observe: observe)
        } catch let error as ServiceError where error.httpStatus == 404 {
            return nil
        }
        struct User: Decodable {
            var displayName: String?
            var username: String?
            var plexUsername: String?
            var email: String?
        }
        struct Media: Decodable {
            var status: Int?
            var status4k: Int?
        }
        struct Answer: Decodable {
            var id: Int?
            var status: Int?
            var is4k: Bool?
            var media: Media?
            var modifiedBy: User?
        }
        let answer = try response.decode(Answer.self, service: Self.service)
        guard let status = answer.status else {
            throw ServiceError.invalidResponse(service: Self.service, reason: "the request has no status")
        }
        let media = answer.is4k == true ? (answer.media?.status4k ?? answer.media?.status) : answer.media?.status
        let who = answer.modifiedBy.flatMap { $0.displayName ?? $0.username ?? $0.plexUsername ?? $0.email }
        return OverseerrRequestState(id: answer.id.map(String.init) ?? id, status: status, mediaStatus: media, modifiedBy: who)
    }
}
