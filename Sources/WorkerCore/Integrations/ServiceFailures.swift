import Foundation
import JSON
import PostgresClient
import ServiceClients

/// How integration handlers turn a failed service call into the job's failure.
enum ServiceFailures {
    /// The job failure for `error` from a call to `service`. While the service's circuit is open the
    /// job's stage says what it waits for (`waiting for plex`), and it is rescheduled for when the
    /// breaker lets a trial call through, the attempt not counted: an outage never fails the job.
    static func jobFailure(_ error: any Error, service: String, context: JobContext) async -> any Error {
        switch error {
        case is CancellationError:
            return error
        case let failure as JobFailure:
            return failure
        case let serviceError as ServiceError:
            if case .circuitOpen(_, let after) = serviceError {
                await context.report(Progress(stage: "waiting for \(service)"))
                return JobFailure.waiting(
                    serviceError.description, seconds: max(after, 1),
                    detail: "circuit open; next trial call in \(Int(after.rounded(.up))) s")
            }
            return serviceError.isRetryable
                ? JobFailure.retryable(serviceError.description)
                : JobFailure.permanent(serviceError.description)
        case let postgres as PostgresError:
            return JobFailure.retryable("PostgreSQL is unavailable; trying again later", detail: "\(postgres)")
        default:
            return JobFailure.retryable("the call to \(service) failed", detail: String(describing: type(of: error)))
        }
    }
}

/// Small JSON helpers for integration results and rows.
extension JSONValue {
    /// An object from pairs, leaving out nil values.
    static func compact(_ pairs: [(String, JSONValue?)]) -> JSONValue {
        .object(pairs.compactMap { key, value in value.map { (key, $0) } })
    }

    /// A string value, or nil.
    static func text(_ value: String?) -> JSONValue? { value.map { .string($0) } }
}
