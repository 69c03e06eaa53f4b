import Foundation
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// ``HTTPTransport`` over Foundation's `URLSession` (libcurl on Linux, on threads of its own).
///
/// One ephemeral session: no cookies, no cache, no credential store. Redirects are not followed
/// (a redirect to another host would carry the service's token there); a 3xx comes back as it is.
/// The deadline covers the whole exchange, not only the gaps between bytes.
public final class URLSessionTransport: HTTPTransport {
    private let session: URLSession

    /// A transport with its own session.
    public init() {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        configuration.urlCache = nil
        configuration.urlCredentialStorage = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpMaximumConnectionsPerHost = 8
        configuration.timeoutIntervalForRequest = 3600
        configuration.timeoutIntervalForResource = 3600
        session = URLSession(configuration: configuration, delegate: RedirectRefuser(), delegateQueue: nil)
    }

    deinit { session.invalidateAndCancel() }

    public func send(_ request: HTTPRequest, service: String, timeout: Double) async throws -> HTTPResponse {
        guard let url = URL(string: request.url), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            url.host != nil
        else {
            throw ServiceError.invalidRequest(service: service, reason: "\(SafeURL.origin(request.url)) is not an http(s) URL")
        }
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        urlRequest.timeoutInterval = max(timeout, 0.001)
        urlRequest.httpShouldHandleCookies = false
        for (name, value) in request.headers { urlRequest.setValue(value, forHTTPHeaderField: name) }
        if let body = request.body { urlRequest.httpBody = Data(body) }

        let flight = Flight()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, any Error>) in
                let task = session.dataTask(with: urlRequest) { data, response, error in
                    let reason = flight.finish()
                    if let error {
                        continuation.resume(throwing: Self.map(error, stopped: reason, service: service, timeout: timeout))
                        return
                    }
                    guard let http = response as? HTTPURLResponse else {
                        continuation.resume(throwing: ServiceError.invalidResponse(service: service, reason: "not an HTTP answer"))
                        return
                    }
                    var headers: [String: String] = [:]
                    for (key, value) in http.allHeaderFields {
                        if let k = key as? String, let v = value as? String { headers[k.lowercased()] = v }
                    }
                    continuation.resume(
                        returning: HTTPResponse(status: http.statusCode, headers: headers, body: data.map { [UInt8]($0) } ?? []))
                }
                if flight.start(task) {
                    task.resume()
                    DispatchQueue.global().asyncAfter(deadline: .now() + max(timeout, 0.001)) {
                        flight.stop(.timeout)
                    }
                } else {
                    task.cancel()
                }
            }
        } onCancel: {
            flight.stop(.cancelled)
        }
    }

    static func map(_ error: any Error, stopped: Flight.Stop?, service: String, timeout: Double) -> any Error {
        switch stopped {
        case .timeout?: return ServiceError.timedOut(service: service, seconds: timeout)
        case .cancelled?: return CancellationError()
        case nil: break
        }
        guard let urlError = error as? URLError else {
            return ServiceError.unreachable(service: service, reason: "the request failed")
        }
        let reason: String
        switch urlError.code {
        case .timedOut: return ServiceError.timedOut(service: service, seconds: timeout)
        case .cancelled: return CancellationError()
        case .cannotConnectToHost: reason = "the connection was refused"
        case .cannotFindHost, .dnsLookupFailed: reason = "the host name does not resolve"
        case .networkConnectionLost: reason = "the connection was closed before the answer was complete"
        case .notConnectedToInternet: reason = "the network is down"
        case .secureConnectionFailed: reason = "the TLS handshake failed"
        case .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid,
            .serverCertificateHasUnknownRoot:
            reason = "its TLS certificate is not trusted"
        case .badServerResponse: reason = "the answer was not valid HTTP"
        case .httpTooManyRedirects, .redirectToNonExistentLocation: reason = "it redirected the request"
        default: reason = "network error \(urlError.code.rawValue)"
        }
        return ServiceError.unreachable(service: service, reason: reason)
    }
}

/// One request in flight: who stopped it (deadline or cancellation) and its task, so that the
/// deadline timer, task cancellation and the completion handler agree on one outcome.
final class Flight: Sendable {
    enum Stop: Sendable { case timeout, cancelled }
    private struct State {
        var task: URLSessionDataTask?
        var stopped: Stop?
        var finished = false
    }
    // URLSessionDataTask is not Sendable in every Foundation; it is only touched under this lock.
    private let state = Mutex<State>(State())

    /// Records the task; false when the request was cancelled before it started.
    func start(_ task: URLSessionDataTask) -> Bool {
        state.withLock { s in
            guard s.stopped == nil else { return false }
            s.task = task
            return true
        }
    }

    /// Stops the request for `reason` unless it already finished or was stopped.
    func stop(_ reason: Stop) {
        let task: URLSessionDataTask? = state.withLock { s in
            guard !s.finished, s.stopped == nil else { return nil }
            s.stopped = reason
            return s.task
        }
        task?.cancel()
    }

    /// Marks the request finished; returns why it was stopped, if it was.
    func finish() -> Stop? {
        state.withLock { s in
            s.finished = true
            s.task = nil
            return s.stopped
        }
    }
}

/// Refuses every redirect, so that the 3xx answer itself is returned.
final class RedirectRefuser: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}
