import Foundation

/// How one call to a service is made.
public struct CallPolicy: Sendable, Equatable {
    /// Seconds one request may take, answer included.
    public var timeout: Double
    /// Further tries after a 5xx, 429 or connection error (not after a timeout: a slow service is
    /// not helped by more load, and the job's own retry comes later).
    public var retries: Int
    /// Seconds before the first further try; doubled for each next one, with ±25 % jitter.
    public var backoff: Double
    /// Longest wait between tries (also caps a `Retry-After` the service asks for).
    public var maxBackoff: Double

    /// A policy; by default 10 s per request, 2 further tries after 0.5 s and 1 s.
    public init(timeout: Double = 10, retries: Int = 2, backoff: Double = 0.5, maxBackoff: Double = 4) {
        self.timeout = timeout
        self.retries = max(retries, 0)
        self.backoff = backoff
        self.maxBackoff = maxBackoff
    }

    /// The wait before try `n` (1-based count of further tries), `random` in 0..<1.
    func delay(beforeRetry n: Int, random: Double = Double.random(in: 0..<1)) -> Double {
        let base = min(backoff * Double(1 << min(max(n - 1, 0), 20)), maxBackoff)
        return base * (0.75 + 0.5 * random)
    }
}

/// The one way the daemon calls HTTP services: each request goes through the service's circuit
/// breaker and the transport with a deadline; 5xx answers and connection errors are tried again
/// with backoff; every request's outcome is reported for metrics (`success`, `client_error`,
/// `server_error`, `timeout`, `unreachable`, `circuit_open`).
public final class ServiceCaller: Sendable {
    /// The transport requests go through.
    public let transport: any HTTPTransport
    /// The breakers, one per service name.
    public let breakers: BreakerRegistry

    /// A caller over `transport` with its own breakers unless given.
    public init(transport: any HTTPTransport = URLSessionTransport(), breakers: BreakerRegistry = BreakerRegistry()) {
        self.transport = transport
        self.breakers = breakers
    }

    /// Sends `request` to `service` and returns a 2xx (or 304) answer. A redirect is an error: it
    /// is not followed, since the request's credentials would go wherever it points.
    ///
    /// Throws ``ServiceError`` (a 4xx or, after the last try, a 5xx answer as
    /// ``ServiceError/httpStatus(service:status:message:)``) or `CancellationError`.
    public func call(
        _ request: HTTPRequest, service: String, policy: CallPolicy = CallPolicy(),
        breakerPolicy: BreakerPolicy = BreakerPolicy(),
        observe: (@Sendable (_ outcome: String) -> Void)? = nil
    ) async throws -> HTTPResponse {
        let breaker = breakers.breaker(service, policy: breakerPolicy)
        var attempt = 0
        while true {
            try Task.checkCancellation()
            let permit: CircuitBreaker.Permit
            do {
                permit = try breaker.acquire()
            } catch {
                observe?("circuit_open")
                throw error
            }
            let failure: ServiceError
            do {
                let response = try await transport.send(request, service: service, timeout: policy.timeout)
                if response.status < 300 || response.status == 304 {
                    breaker.record(permit, failed: false)
                    observe?("success")
                    return response
                }
                if response.status < 400 {
                    // Redirects are not followed: the request's token would go wherever the answer points.
                    breaker.record(permit, failed: false)
                    observe?("client_error")
                    throw ServiceError.httpStatus(
                        service: service, status: response.status,
                        message: "a redirect, which is not followed; configure the address it points to")
                }
                failure = .httpStatus(service: service, status: response.status, message: Self.explanation(response))
                if response.status >= 500 {
                    breaker.record(permit, failed: true)
                    observe?("server_error")
                } else {
                    breaker.record(permit, failed: false)
                    observe?("client_error")
                }
                if failure.isRetryable, attempt < policy.retries {
                    attempt += 1
                    let asked = response.headers["retry-after"].flatMap(Double.init)
                    try await Task.sleep(
                        for: .milliseconds(Int64(1000 * min(asked ?? policy.delay(beforeRetry: attempt), policy.maxBackoff))))
                    continue
                }
                throw failure
            } catch let error as ServiceError {
                if case .httpStatus = error { throw error }
                breaker.record(permit, failed: error.countsAgainstService)
                if case .timedOut = error { observe?("timeout") } else { observe?("unreachable") }
                guard error.isRetryable, attempt < policy.retries, !Self.isTimeout(error) else { throw error }
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int64(1000 * policy.delay(beforeRetry: attempt))))
            } catch {
                breaker.release(permit)
                throw error
            }
        }
    }

    private static func isTimeout(_ error: ServiceError) -> Bool {
        if case .timedOut = error { return true }
        return false
    }

    /// The service's own short explanation from an error answer: the `message` or `error` member
    /// of a JSON body, at most 200 characters, one line. Other bodies (HTML pages) give none.
    static func explanation(_ response: HTTPResponse) -> String? {
        guard response.body.count <= 64 * 1024, let first = response.body.first(where: { $0 > 0x20 }), first == UInt8(ascii: "{"),
            let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        else { return nil }
        for key in ["message", "error", "detail"] {
            if let text = object[key] as? String, !text.isEmpty {
                let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
                return String(line.prefix(200))
            }
        }
        return nil
    }
}
