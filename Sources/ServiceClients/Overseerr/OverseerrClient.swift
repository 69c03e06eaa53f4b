import Foundation

/// What Overseerr answered to a new media request.
public struct OverseerrRequest: Sendable, Equatable {
    /// Overseerr's id of the request; nil when it already existed (HTTP 409) and no id was given.
    public var id: String?
    /// Overseerr's request status: 1 pending approval, 2 approved, 3 declined.
    public var status: Int?
    /// True when Overseerr said the media had been requested already (HTTP 409).
    public var alreadyRequested: Bool

    /// A request outcome.
    public init(id: String?, status: Int?, alreadyRequested: Bool) {
        self.id = id
        self.status = status
        self.alreadyRequested = alreadyRequested
    }
}

/// The Overseerr calls the daemon makes, authenticated with the `X-Api-Key` header, under the
/// service name `overseerr`.
public struct OverseerrClient: Sendable {
    /// The service name used for breakers and metrics.
    public static let service = "overseerr"

    /// The server's base URL.
    public let url: String
    let apiKey: String
    let caller: ServiceCaller
    /// How each request is made.
    public var policy: CallPolicy
    /// How the `overseerr` breaker behaves.
    public var breakerPolicy: BreakerPolicy
    let observe: (@Sendable (String) -> Void)?

    /// A client of the server at `url` with `apiKey`.
    public init(
        url: String, apiKey: String, caller: ServiceCaller, policy: CallPolicy = CallPolicy(),
        breakerPolicy: BreakerPolicy = BreakerPolicy(), observe: (@Sendable (String) -> Void)? = nil
    ) {
        self.url = url
        self.apiKey = apiKey
        self.caller = caller
        self.policy = policy
        self.breakerPolicy = breakerPolicy
        self.observe = observe
    }

    func request(_ method: String, _ path: String, body: [UInt8]? = nil) -> HTTPRequest {
        var headers = [("Accept", "application/json"), ("X-Api-Key", apiKey)]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        return HTTPRequest(method: method, url: URLBuilder.url(base: url, path: "/api/v1" + path), headers: headers, body: body)
    }

    /// `GET /api/v1/status`: Overseerr's version.
    public func status() async throws -> String? {
        struct Status: Decodable { var version: String? }
        let response = try await caller.call(
            request("GET", "/status"), service: Self.service, policy: policy,
            breakerPolicy: breakerPolicy, observe: observe)
        return try response.decode(Status.self, service: Self.service).version
    }

    /// `POST /api/v1/request`: asks for a movie or a series (`mediaType` `movie` or `tv`) by its
    /// TMDB id; `seasons` (tv only) lists season numbers, or all seasons when nil.
    ///
    /// A 409 answer (the media is requested already) is a success with ``OverseerrRequest/alreadyRequested``.
    /// Other 4xx answers throw a non-retryable ``ServiceError/httpStatus(service:status:message:)``.
    public func submit(mediaType: String, tmdbId: Int, seasons: [Int]?) async throws -> OverseerrRequest {
        var body = "{\"mediaType\":\(mediaType == "tv" ? "\"tv\"" : "\"movie\""),\"mediaId\":\(tmdbId)"
        if mediaType == "tv" {
            if let seasons, !seasons.isEmpty {
                body += ",\"seasons\":[" + seasons.map(String.init).joined(separator: ",") + "]"
            } else {
                body += ",\"seasons\":\"all\""
            }
        }
        body += "}"
        let response: HTTPResponse
        do {
            response = try await caller.call(
                request("POST", "/request", body: Array(body.utf8)), service: Self.service,
                policy: policy, breakerPolicy: breakerPolicy, observe: observe)
        } catch let error as ServiceError where error.httpStatus == 409 {
            return OverseerrRequest(id: nil, status: nil, alreadyRequested: true)
        }
        struct Created: Decodable {
            var id: Int?
            var status: Int?
        }
        let created = try response.decode(Created.self, service: Self.service)
        return OverseerrRequest(id: created.id.map(String.init), status: created.status, alreadyRequested: false)
    }
}
