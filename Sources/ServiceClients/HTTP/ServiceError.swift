/// Why a call to an outside service did not succeed.
///
/// Every case carries a sentence a user can act on (``description``). None of them ever holds a
/// secret: URLs are reduced to scheme, host, port and path (``SafeURL``), and header values, query
/// values and request bodies are never copied into an error.
public enum ServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The service's circuit breaker is open: recent calls failed, so calls are held back until
    /// `retryAfter` seconds from now, when one trial call is let through.
    case circuitOpen(service: String, retryAfter: Double)
    /// No complete answer within `seconds`.
    case timedOut(service: String, seconds: Double)
    /// The connection could not be made or broke (refused, reset, DNS, TLS).
    case unreachable(service: String, reason: String)
    /// The service answered with an HTTP error status. `message` is the service's own short
    /// explanation when it gave one (already stripped of anything secret-looking).
    case httpStatus(service: String, status: Int, message: String?)
    /// The answer could not be understood.
    case invalidResponse(service: String, reason: String)
    /// The request could not be made from the settings (a bad URL, say).
    case invalidRequest(service: String, reason: String)
    /// The service answered, but what was looked for is not there (a library section, an item).
    case missing(service: String, what: String)

    /// The service's name as used in metrics and breakers (`plex`, `overseerr`, `webhook`, `smtp`).
    public var service: String {
        switch self {
        case .circuitOpen(let s, _), .timedOut(let s, _), .unreachable(let s, _), .httpStatus(let s, _, _),
            .invalidResponse(let s, _), .invalidRequest(let s, _), .missing(let s, _):
            return s
        }
    }

    /// Whether another try later could succeed: connection trouble, timeouts, 5xx, 429 and an open
    /// circuit are; other 4xx answers and malformed requests are not.
    public var isRetryable: Bool {
        switch self {
        case .circuitOpen, .timedOut, .unreachable: return true
        case .httpStatus(_, let status, _): return status >= 500 || status == 429 || status == 408
        case .invalidResponse: return true
        case .invalidRequest, .missing: return false
        }
    }

    /// Whether the failure says the service is unhealthy (counts against its circuit breaker).
    /// A 4xx answer is the service working and refusing this request, so it does not count.
    public var countsAgainstService: Bool {
        switch self {
        case .timedOut, .unreachable: return true
        case .httpStatus(_, let status, _): return status >= 500
        case .invalidResponse, .circuitOpen, .invalidRequest, .missing: return false
        }
    }

    /// The HTTP status when the service answered with one.
    public var httpStatus: Int? {
        if case .httpStatus(_, let status, _) = self { return status }
        return nil
    }

    /// A sentence for the user.
    public var description: String {
        let name = Self.displayName(service)
        switch self {
        case .circuitOpen(_, let after):
            return "\(name) is unavailable after repeated failures; calls resume in \(Self.seconds(after))"
        case .timedOut(_, let seconds):
            return "\(name) did not answer within \(Self.seconds(seconds)); check that it is running and not overloaded"
        case .unreachable(_, let reason):
            return "cannot reach \(name): \(reason)"
        case .httpStatus(_, let status, let message):
            var text = "\(name) answered HTTP \(status)"
            switch status {
            case 401: text += " (unauthorized): check the token or API key in jobs.yml"
            case 403: text += " (forbidden): the token or API key lacks the permission for this"
            case 404: text += " (not found)"
            default: break
            }
            if let message, !message.isEmpty { text += ": \(message)" }
            return text
        case .invalidResponse(_, let reason):
            return "\(name) gave an answer the daemon cannot read: \(reason)"
        case .invalidRequest(_, let reason):
            return "cannot call \(name): \(reason)"
        case .missing(_, let what):
            return "\(name) has no \(what)"
        }
    }

    static func displayName(_ service: String) -> String {
        switch service {
        case "plex": return "Plex"
        case "overseerr": return "Overseerr"
        case "smtp": return "the mail server"
        case "webhook": return "the webhook receiver"
        default:
            if service.hasPrefix("webhook:") { return "the webhook receiver \(service.dropFirst(8))" }
            return service
        }
    }

    static func seconds(_ value: Double) -> String {
        if value < 1 { return "\(max(Int((value * 1000).rounded()), 1)) ms" }
        if value < 120 { return "\(Int(value.rounded())) s" }
        return "\(Int((value / 60).rounded())) min"
    }
}
