import Foundation

/// The signature of a webhook delivery: `X-MediaNest-Signature: sha256=<hex>` where hex is the
/// HMAC-SHA256, under the webhook's secret, of `"<timestamp>.<body>"`; the timestamp (Unix
/// seconds) travels in `X-MediaNest-Timestamp`. A receiver recomputes the MAC over the timestamp
/// header, a dot and the raw body, compares in constant time, and refuses timestamps older than a
/// few minutes, so that a captured delivery cannot be replayed.
public enum WebhookSignature {
    /// Header carrying the signature.
    public static let signatureHeader = "X-MediaNest-Signature"
    /// Header carrying the timestamp the signature covers.
    public static let timestampHeader = "X-MediaNest-Timestamp"

    /// `sha256=<hex>` for `body` sent at `timestamp` (Unix seconds).
    public static func sign(secret: String, timestamp: Int64, body: [UInt8]) -> String {
        "sha256=" + HMACSHA256.hex(key: Array(secret.utf8), message: Array("\(timestamp).".utf8) + body)
    }

    /// Whether `signature` is right for `body` at `timestamp` and the timestamp is within
    /// `tolerance` seconds of `now` (what a receiver does; used by tests).
    public static func verify(
        secret: String, timestamp: Int64, body: [UInt8], signature: String,
        now: Int64, tolerance: Int64 = 300
    ) -> Bool {
        guard abs(now - timestamp) <= tolerance else { return false }
        let expected = Array(sign(secret: secret, timestamp: timestamp, body: body).utf8)
        let given = Array(signature.utf8)
        guard expected.count == given.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(expected, given) { difference |= a ^ b }
        return difference == 0
    }
}

/// Sends signed JSON deliveries to webhook receivers, each receiver behind a breaker of its own
/// (`webhook:<host>`). One call is one try; the caller retries with its own backoff.
public struct WebhookClient: Sendable {
    let caller: ServiceCaller
    /// How each delivery is made (no in-call retries by default).
    public var policy: CallPolicy
    /// How each receiver's breaker behaves.
    public var breakerPolicy: BreakerPolicy

    /// A client over `caller`.
    public init(
        caller: ServiceCaller, policy: CallPolicy = CallPolicy(timeout: 10, retries: 0),
        breakerPolicy: BreakerPolicy = BreakerPolicy()
    ) {
        self.caller = caller
        self.policy = policy
        self.breakerPolicy = breakerPolicy
    }

    /// The service name of the receiver at `url` (breaker and metric label).
    public static func service(for url: String) -> String { "webhook:" + SafeURL.host(url) }

    /// The signed request for one delivery.
    public static func request(
        url: String, secret: String, event: String, deliveryID: String,
        timestamp: Int64, body: [UInt8]
    ) -> HTTPRequest {
        HTTPRequest(
            method: "POST", url: url,
            headers: [
                ("Content-Type", "application/json"),
                ("User-Agent", "medianest-worker"),
                ("X-MediaNest-Event", event),
                ("X-MediaNest-Delivery", deliveryID),
                (WebhookSignature.timestampHeader, String(timestamp)),
                (WebhookSignature.signatureHeader, WebhookSignature.sign(secret: secret, timestamp: timestamp, body: body)),
            ], body: body)
    }

    /// Delivers `body` (a JSON object) to `url`, signed with `secret` at the current time. Succeeds on
    /// a 2xx answer; throws ``ServiceError`` otherwise (a redirect too: receivers answer directly).
    public func deliver(
        url: String, secret: String, event: String, deliveryID: String, body: [UInt8],
        observe: (@Sendable (String) -> Void)? = nil
    ) async throws {
        let timestamp = Int64(Date().timeIntervalSince1970)
        let service = Self.service(for: url)
        _ = try await caller.call(
            Self.request(
                url: url, secret: secret, event: event, deliveryID: deliveryID,
                timestamp: timestamp, body: body),
            service: service, policy: policy, breakerPolicy: breakerPolicy, observe: observe)
    }
}
