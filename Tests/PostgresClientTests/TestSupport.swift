import Foundation
import Testing

@testable import PostgresClient

/// A test could not be set up; the description says what to do.
struct TestSetupError: Error, CustomStringConvertible {
    let description: String
}

/// The PostgreSQL server the integration tests use.
enum TestDatabase {
    static let variable = "MEDIANEST_TEST_DATABASE_URL"

    /// The configuration from `MEDIANEST_TEST_DATABASE_URL`; a missing variable fails the test.
    static func configuration() throws -> PostgresConfiguration {
        guard let url = ProcessInfo.processInfo.environment[variable], !url.isEmpty else {
            throw TestSetupError(
                description: """
                    \(variable) is not set. Point it at a PostgreSQL server the tests may create \
                    schemas in, e.g. \(variable)=postgres://medianest@127.0.0.1:5440/medianest
                    """)
        }
        do {
            var configuration = try PostgresConfiguration(url: url)
            configuration.applicationName = "postgres-client-tests"
            return configuration
        } catch {
            throw TestSetupError(description: "\(variable) is not a valid URL: \(error)")
        }
    }

    /// A connection to the test server; an unreachable server fails the test.
    static func connect(_ configuration: PostgresConfiguration? = nil) async throws -> PostgresConnection {
        let configuration = try configuration ?? self.configuration()
        do {
            return try await PostgresConnection.connect(configuration)
        } catch {
            throw TestSetupError(
                description: """
                    cannot reach the test database \(configuration.redactedURL) (from \(variable)): \(error)
                    """)
        }
    }

    /// A throwaway schema for one test: `body` gets a configuration whose `search_path`
    /// is that schema, so unqualified tables (and `schema_migrations`) land there. The
    /// schema is dropped afterwards, also when `body` throws.
    static func withSchema<T>(_ body: (PostgresConfiguration) async throws -> T) async throws -> T {
        var configuration = try self.configuration()
        let admin = try await connect(configuration)
        defer { admin.close() }
        let schema = "pgclient_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        try await admin.execute(script: "CREATE SCHEMA \(schema)")
        configuration.extraParameters["options"] = "-c search_path=\(schema)"
        do {
            let value = try await body(configuration)
            try await admin.execute(script: "DROP SCHEMA \(schema) CASCADE")
            return value
        } catch {
            try? await admin.execute(script: "DROP SCHEMA \(schema) CASCADE")
            throw error
        }
    }

    /// Like `withSchema`, with a pool of `size` on that schema, closed afterwards.
    static func withPool<T>(size: Int = 2, _ body: (PostgresPool, PostgresConfiguration) async throws -> T) async throws -> T {
        try await withSchema { configuration in
            let pool = PostgresPool(configuration: configuration, size: size)
            do {
                // Fail early, and clearly, when the server is unreachable.
                _ = try await pool.query("SELECT 1")
            } catch {
                await pool.close()
                throw TestSetupError(description: "cannot reach the test database \(configuration.redactedURL): \(error)")
            }
            do {
                let value = try await body(pool, configuration)
                await pool.close()
                return value
            } catch {
                await pool.close()
                throw error
            }
        }
    }

    /// Terminates the backend `pid` from another session and waits until it is gone.
    static func terminate(pid: Int) async throws {
        let admin = try await connect()
        defer { admin.close() }
        let result = try await admin.query("SELECT pg_terminate_backend($1) AS done", [PostgresBind(pid)])
        #expect(try result.rows[0].bool("done"))
        for _ in 0..<200 {
            let alive = try await admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1", [PostgresBind(pid)])
            if try alive.rows[0].int("n") == 0 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestSetupError(description: "backend \(pid) did not end after pg_terminate_backend")
    }

    /// A port on 127.0.0.1 where nothing listens (bound and released at once).
    static func closedPort() -> Int {
        #if canImport(Glibc)
            let streamType = Int32(SOCK_STREAM.rawValue)
        #else
            let streamType = SOCK_STREAM
        #endif
        let socketDescriptor = socket(AF_INET, streamType, 0)
        defer { close(socketDescriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketDescriptor, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketDescriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Runs `body` and returns the `PostgresError` it throws; records an issue if it throws
/// nothing or something else.
func capturePostgresError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> PostgresError? {
    do {
        try await body()
        Issue.record("expected a PostgresError, but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as PostgresError {
        return error
    } catch {
        Issue.record("expected a PostgresError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The database tests, run one at a time: they share one server with other people.
@Suite("PostgreSQL integration", .serialized)
struct DatabaseTests {}
