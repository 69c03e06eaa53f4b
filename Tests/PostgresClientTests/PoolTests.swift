import Foundation
import Testing

@testable import PostgresClient

private struct BodyFailed: Error, Equatable {}

extension DatabaseTests {
    @Suite("PostgresPool")
    struct PoolTests {
        @Test func fiftyConcurrentQueriesOnTwoConnections() async throws {
            try await TestDatabase.withPool(size: 2) { pool, _ in
                let pids = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                    for number in 0..<50 {
                        group.addTask {
                            let row = try await pool.query(
                                "SELECT pg_backend_pid() AS pid, $1::int AS n, pg_sleep(0.01)", [PostgresBind(number)]
                            ).rows[0]
                            return (try row.int("pid"), try row.int("n"))
                        }
                    }
                    var seen: [(Int, Int)] = []
                    for try await result in group { seen.append(result) }
                    return seen
                }
                #expect(pids.count == 50)
                #expect(Set(pids.map(\.1)) == Set(0..<50))
                #expect(Set(pids.map(\.0)).count <= 2, "never more than `size` connections")
            }
        }

        @Test func waitersAreServedInArrivalOrder() async throws {
            try await TestDatabase.withPool(size: 1) { pool, _ in
                let served = try await withThrowingTaskGroup(of: (Int, Date).self) { group in
                    group.addTask {
                        let row = try await pool.query("SELECT pg_sleep(0.5), clock_timestamp() AS at").rows[0]
                        return (-1, try row.date("at"))
                    }
                    try await Task.sleep(for: .milliseconds(100))
                    for number in 0..<5 {
                        group.addTask {
                            // The server's clock tells the order in which the connection was granted.
                            let row = try await pool.query("SELECT clock_timestamp() AS at, $1::int AS n", [PostgresBind(number)]).rows[0]
                            return (try row.int("n"), try row.date("at"))
                        }
                        try await Task.sleep(for: .milliseconds(30))
                    }
                    var served: [(Int, Date)] = []
                    for try await item in group { served.append(item) }
                    return served
                }
                #expect(served.sorted { $0.1 < $1.1 }.map(\.0) == [-1, 0, 1, 2, 3, 4])
            }
        }

        @Test func transactionCommits() async throws {
            try await TestDatabase.withPool { pool, _ in
                _ = try await pool.query("CREATE TABLE t (id int PRIMARY KEY)")
                let value = try await pool.transaction { connection in
                    _ = try await connection.query("INSERT INTO t VALUES ($1)", [1])
                    _ = try await connection.query("INSERT INTO t VALUES ($1)", [2])
                    #expect(connection.isInTransaction)
                    return "done"
                }
                #expect(value == "done")
                #expect(try await pool.query("SELECT count(*) AS n FROM t").rows[0].int("n") == 2)
            }
        }

        @Test func transactionRollsBackAndRethrows() async throws {
            try await TestDatabase.withPool { pool, _ in
                _ = try await pool.query("CREATE TABLE t (id int PRIMARY KEY)")
                await #expect(throws: BodyFailed.self) {
                    try await pool.transaction { connection in
                        _ = try await connection.query("INSERT INTO t VALUES ($1)", [1])
                        throw BodyFailed()
                    }
                }
                let serverError = await capturePostgresError {
                    try await pool.transaction { connection in
                        _ = try await connection.query("INSERT INTO t VALUES ($1)", [2])
                        _ = try await connection.query("INSERT INTO t VALUES ($1)", [2])
                    }
                }
                #expect(serverError?.sqlState == "23505")
                #expect(try await pool.query("SELECT count(*) AS n FROM t").rows[0].int("n") == 0)
            }
        }

        @Test func swallowedFailureIsNotReportedAsCommitted() async throws {
            try await TestDatabase.withPool { pool, _ in
                _ = try await pool.query("CREATE TABLE t (id int PRIMARY KEY)")
                let error = await capturePostgresError {
                    try await pool.transaction { connection in
                        _ = try await connection.query("INSERT INTO t VALUES ($1)", [1])
                        _ = try? await connection.query("SELECT 1/0")
                    }
                }
                #expect(error?.sqlState == "25P02")
                #expect(try await pool.query("SELECT count(*) AS n FROM t").rows[0].int("n") == 0)
            }
        }

        @Test func connectionLeftInATransactionIsNotReused() async throws {
            try await TestDatabase.withPool(size: 1) { pool, _ in
                let first = try await pool.withConnection { connection in
                    try await connection.execute(script: "BEGIN")
                    return try await connection.query("SELECT pg_backend_pid() AS pid").rows[0].int("pid")
                }
                let second = try await pool.query("SELECT pg_backend_pid() AS pid, now() = statement_timestamp() AS fresh").rows[0]
                #expect(try second.int("pid") != first)
            }
        }

        @Test func poolSurvivesATerminatedBackend() async throws {
            try await TestDatabase.withPool(size: 1) { pool, _ in
                let pid = try await pool.query("SELECT pg_backend_pid() AS pid").rows[0].int("pid")
                try await TestDatabase.terminate(pid: pid)
                // The idle connection is found dead before anything is sent, so the query
                // moves to a fresh connection; a .connection error would also be acceptable.
                do {
                    let row = try await pool.query("SELECT pg_backend_pid() AS pid").rows[0]
                    #expect(try row.int("pid") != pid)
                } catch let error as PostgresError {
                    #expect(error.isConnectionError, "\(error)")
                }
                for _ in 0..<3 {
                    let row = try await pool.query("SELECT pg_backend_pid() AS pid").rows[0]
                    #expect(try row.int("pid") != pid)
                }
                // Same through withConnection and transaction.
                let newPid = try await pool.query("SELECT pg_backend_pid() AS pid").rows[0].int("pid")
                try await TestDatabase.terminate(pid: newPid)
                let viaConnection = try await pool.withConnection { connection in
                    try await connection.query("SELECT pg_backend_pid() AS pid").rows[0].int("pid")
                }
                #expect(viaConnection != newPid)
                try await TestDatabase.terminate(pid: viaConnection)
                let viaTransaction = try await pool.transaction { connection in
                    try await connection.query("SELECT pg_backend_pid() AS pid").rows[0].int("pid")
                }
                #expect(viaTransaction != viaConnection)
            }
        }

        @Test func connectionLostMidQueryReachesTheCallerThenThePoolRecovers() async throws {
            try await TestDatabase.withPool(size: 1) { pool, _ in
                let pid = try await pool.query("SELECT pg_backend_pid() AS pid").rows[0].int("pid")
                async let outcome: PostgresError? = capturePostgresError { _ = try await pool.query("SELECT pg_sleep(5)") }
                try await Task.sleep(for: .milliseconds(200))
                try await TestDatabase.terminate(pid: pid)
                let error = await outcome
                #expect(error?.isConnectionError == true, "\(String(describing: error))")
                let after = try await pool.query("SELECT pg_backend_pid() AS pid").rows[0]
                #expect(try after.int("pid") != pid)
            }
        }

        @Test func unreachableServerIsReportedAndThePoolStaysUsable() async throws {
            var configuration = try TestDatabase.configuration()
            configuration.port = TestDatabase.closedPort()
            configuration.password = "never-in-errors"
            let pool = PostgresPool(configuration: configuration, size: 2)
            for _ in 0..<3 {
                let error = await capturePostgresError { _ = try await pool.query("SELECT 1") }
                #expect(error?.isConnectionError == true)
                #expect(error?.description.contains("never-in-errors") == false)
            }
            await #expect(throws: PostgresError.self) {
                try await pool.withConnection { _ in }
            }
            await pool.close()
        }

        @Test func cancelledWaiterLeavesTheQueue() async throws {
            try await TestDatabase.withPool(size: 1) { pool, _ in
                let holder = Task {
                    try await pool.withConnection { connection in
                        _ = try await connection.query("SELECT pg_sleep(0.4)")
                    }
                }
                try await Task.sleep(for: .milliseconds(100))
                let waiter = Task {
                    try await pool.withConnection { _ in "got one" }
                }
                try await Task.sleep(for: .milliseconds(50))
                waiter.cancel()
                await #expect(throws: CancellationError.self) { try await waiter.value }
                try await holder.value
                #expect(try await pool.query("SELECT 1 AS one").rows[0].int("one") == 1)
            }
        }

        @Test func closedPoolRefusesWork() async throws {
            try await TestDatabase.withSchema { configuration in
                let pool = PostgresPool(configuration: configuration, size: 2)
                _ = try await pool.query("SELECT 1")
                await pool.close()
                let error = await capturePostgresError { _ = try await pool.query("SELECT 1") }
                #expect(error == .closed)
                await pool.close()
            }
        }

        @Test func closeWaitsForLentConnections() async throws {
            try await TestDatabase.withSchema { configuration in
                let pool = PostgresPool(configuration: configuration, size: 2)
                let lent = Task {
                    try await pool.withConnection { connection in
                        _ = try await connection.query("SELECT pg_sleep(0.2)")
                        return connection
                    }
                }
                try await Task.sleep(for: .milliseconds(50))
                await pool.close()
                let connection = try await lent.value
                #expect(!connection.isHealthy, "closed when it came back")
            }
        }

        @Test func batchedUpsertOfFiveThousandRows() async throws {
            try await TestDatabase.withPool { pool, _ in
                _ = try await pool.query("CREATE TABLE counters (name text PRIMARY KEY, n int NOT NULL)")
                let sql = """
                    INSERT INTO counters (name, n)
                    SELECT * FROM unnest($1::text[], $2::int[])
                    ON CONFLICT (name) DO UPDATE SET n = counters.n + EXCLUDED.n
                    """
                let names: [String?] = (0..<5000).map { "item-\($0) \"q\" {b} \\" }
                let first = try await pool.query(sql, [PostgresBind(array: names), PostgresBind(array: (0..<5000).map { Int64($0) })])
                #expect(first.affectedRows == 5000)
                let second = try await pool.query(
                    sql, [PostgresBind(array: names), PostgresBind(array: [Int64?](repeating: 1, count: 5000))])
                #expect(second.affectedRows == 5000)
                let summary = try await pool.query("SELECT count(*) AS c, sum(n) AS s FROM counters").rows[0]
                #expect(try summary.int("c") == 5000)
                #expect(try summary.int("s") == (0..<5000).reduce(0, +) + 5000)
                let one = try await pool.query("SELECT n FROM counters WHERE name = $1", [PostgresBind(names[42])]).rows
                #expect(try one.first?.int("n") == 43)
            }
        }
    }
}
