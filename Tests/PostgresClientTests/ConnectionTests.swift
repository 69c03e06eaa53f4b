import Foundation
import Testing

@testable import PostgresClient

extension DatabaseTests {
    @Suite("PostgresConnection")
    struct ConnectionTests {
        @Test func preparedStatementIsReused() async throws {
            let connection = try await TestDatabase.connect()
            defer { connection.close() }
            let sql = "SELECT $1::int * 2 AS doubled, $2::text AS tag"
            for number in 0..<1000 {
                let row = try await connection.query(sql, [PostgresBind(number), PostgresBind("n\(number)")]).rows[0]
                #expect(try row.int("doubled") == number * 2)
                if number % 250 == 0 { #expect(try row.string("tag") == "n\(number)") }
            }
            let prepared = try await connection.query(
                "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = $1", [PostgresBind(sql)])
            #expect(try prepared.rows[0].int("n") == 1, "one server-side statement for 1,000 runs")
        }

        @Test func statementCacheIsBounded() async throws {
            let connection = try await TestDatabase.connect()
            defer { connection.close() }
            for number in 0..<(ConnectionCore.statementCacheLimit + 44) {
                let row = try await connection.query("SELECT $1::int + \(number) AS n", [1]).rows[0]
                #expect(try row.int("n") == number + 1)
            }
            let count = try await connection.query("SELECT count(*) AS n FROM pg_prepared_statements").rows[0].int("n")
            #expect(count <= ConnectionCore.statementCacheLimit)
            #expect(count >= 40)
        }

        @Test func statementsComeBackAfterDiscardAll() async throws {
            let connection = try await TestDatabase.connect()
            defer { connection.close() }
            let sql = "SELECT $1::int + 1 AS next"
            #expect(try await connection.query(sql, [1]).rows[0].int("next") == 2)
            // Seen by the client: the cache is reset.
            _ = try await connection.query("DISCARD ALL")
            #expect(try await connection.query(sql, [2]).rows[0].int("next") == 3)
            try await connection.execute(script: "DEALLOCATE ALL")
            #expect(try await connection.query(sql, [3]).rows[0].int("next") == 4)
            // Behind the cache's back: the server says the statement does not exist, and
            // the connection prepares it again once.
            try await connection.executeBehindCache("DEALLOCATE ALL")
            #expect(try await connection.query(sql, [4]).rows[0].int("next") == 5)
            #expect(connection.isHealthy)
        }

        @Test func statementsComeBackAfterTheTableChanges() async throws {
            try await TestDatabase.withSchema { configuration in
                let connection = try await TestDatabase.connect(configuration)
                defer { connection.close() }
                try await connection.execute(script: "CREATE TABLE items (id int)")
                _ = try await connection.query("INSERT INTO items VALUES ($1)", [1])
                #expect(try await connection.query("SELECT * FROM items").rows[0].columns == ["id"])
                try await connection.execute(script: "ALTER TABLE items ADD COLUMN name text")
                // "cached plan must not change result type": prepared afresh.
                #expect(try await connection.query("SELECT * FROM items").rows[0].columns == ["id", "name"])
            }
        }

        @Test func serverErrorsCarrySQLState() async throws {
            try await TestDatabase.withSchema { configuration in
                let connection = try await TestDatabase.connect(configuration)
                defer { connection.close() }
                let division = await capturePostgresError { _ = try await connection.query("SELECT 1 / $1::int AS x", [0]) }
                guard case .query(let message, let sqlState, _) = division else {
                    Issue.record("expected .query, got \(String(describing: division))")
                    return
                }
                #expect(message == "division by zero")
                #expect(sqlState == "22012")

                let syntax = await capturePostgresError { _ = try await connection.query("SELEC 1") }
                #expect(syntax?.sqlState == "42601")

                try await connection.execute(script: "CREATE TABLE uniq (k text PRIMARY KEY)")
                _ = try await connection.query("INSERT INTO uniq VALUES ($1)", ["a"])
                let duplicate = await capturePostgresError { _ = try await connection.query("INSERT INTO uniq VALUES ($1)", ["a"]) }
                guard case .query(_, let duplicateState, let detail) = duplicate else {
                    Issue.record("expected .query, got \(String(describing: duplicate))")
                    return
                }
                #expect(duplicateState == "23505")
                #expect(detail?.contains("(k)=(a)") == true)
                #expect(duplicate?.description.contains("SQLSTATE 23505") == true)

                let wrongCount = await capturePostgresError { _ = try await connection.query("SELECT $1::int AS a, $2::int AS b", [1]) }
                #expect(wrongCount?.sqlState != nil)

                // The connection is still fine after all that.
                #expect(connection.isHealthy)
                #expect(try await connection.query("SELECT count(*) AS n FROM uniq").rows[0].int("n") == 1)
            }
        }

        @Test func scripts() async throws {
            try await TestDatabase.withSchema { configuration in
                let connection = try await TestDatabase.connect(configuration)
                defer { connection.close() }
                try await connection.execute(
                    script: """
                        CREATE TABLE a (x int);
                        INSERT INTO a VALUES (1), (2);
                        CREATE TABLE b AS SELECT x * 10 AS y FROM a;
                        """)
                #expect(try await connection.query("SELECT sum(y) AS s FROM b").rows[0].int("s") == 30)
                // A failing script runs as one implicit transaction: nothing of it stays.
                let error = await capturePostgresError {
                    try await connection.execute(script: "INSERT INTO a VALUES (3); SELECT 1/0; INSERT INTO a VALUES (4);")
                }
                #expect(error?.sqlState == "22012")
                #expect(try await connection.query("SELECT count(*) AS n FROM a").rows[0].int("n") == 2)
                try await connection.execute(script: "")
                let copy = await capturePostgresError { try await connection.execute(script: "COPY a FROM STDIN") }
                #expect(copy?.description.contains("COPY") == true)
                let copyOut = await capturePostgresError { _ = try await connection.query("COPY a TO STDOUT") }
                #expect(copyOut?.description.contains("COPY") == true)
                #expect(connection.isHealthy)
                #expect(try await connection.query("SELECT count(*) AS n FROM a").rows[0].int("n") == 2)
            }
        }

        @Test func manyTasksShareOneConnection() async throws {
            let connection = try await TestDatabase.connect()
            defer { connection.close() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for number in 0..<40 {
                    group.addTask {
                        let row = try await connection.query("SELECT $1::int AS n", [PostgresBind(number)]).rows[0]
                        #expect(try row.int("n") == number)
                    }
                }
                try await group.waitForAll()
            }
        }

        @Test func closedConnection() async throws {
            let connection = try await TestDatabase.connect()
            #expect(connection.isHealthy)
            connection.close()
            connection.close()
            #expect(!connection.isHealthy)
            let error = await capturePostgresError { _ = try await connection.query("SELECT 1") }
            #expect(error == .closed)
            let scriptError = await capturePostgresError { try await connection.execute(script: "SELECT 1") }
            #expect(scriptError == .closed)
        }

        @Test func transactionState() async throws {
            let connection = try await TestDatabase.connect()
            defer { connection.close() }
            #expect(!connection.isInTransaction)
            try await connection.execute(script: "BEGIN")
            #expect(connection.isInTransaction)
            _ = await capturePostgresError { _ = try await connection.query("SELECT 1/0") }
            #expect(connection.isInTransaction, "a failed transaction still needs ROLLBACK")
            let aborted = await capturePostgresError { _ = try await connection.query("SELECT 1") }
            #expect(aborted?.sqlState == "25P02")
            try await connection.execute(script: "ROLLBACK")
            #expect(!connection.isInTransaction)
        }

        @Test func closedPortFailsQuicklyWithoutThePassword() async throws {
            let port = TestDatabase.closedPort()
            // A long connect timeout: a refused port must fail at once, whatever the machine's load.
            let configuration = try PostgresConfiguration(
                url: "postgres://medianest:Pa55-word-zz@127.0.0.1:\(port)/medianest?connect_timeout=30")
            let started = ContinuousClock.now
            let error = await capturePostgresError { _ = try await PostgresConnection.connect(configuration) }
            let elapsed = ContinuousClock.now - started
            guard case .connection(let reason) = error else {
                Issue.record("expected .connection, got \(String(describing: error))")
                return
            }
            #expect(elapsed < .seconds(10))
            #expect(reason.contains("127.0.0.1:\(port)"))
            #expect(reason.lowercased().contains("refused"))
            #expect(!reason.contains("Pa55-word-zz"))
            #expect(!String(describing: error).contains("Pa55-word-zz"))
            #expect(!reason.contains("\n"))
        }

        @Test func unknownDatabaseIsAConnectionError() async throws {
            var configuration = try TestDatabase.configuration()
            configuration.database = "no_such_database_\(UInt32.random(in: 0...UInt32.max))"
            configuration.password = "hunter2-never-shown"
            let error = await capturePostgresError { _ = try await PostgresConnection.connect(configuration) }
            guard case .connection(let reason) = error else {
                Issue.record("expected .connection, got \(String(describing: error))")
                return
            }
            #expect(reason.contains(configuration.endpoint))
            #expect(reason.contains("does not exist"))
            #expect(!reason.contains("hunter2"))
        }

        @Test func terminatedBackendIsAConnectionError() async throws {
            let connection = try await TestDatabase.connect()
            defer { connection.close() }
            let pid = try await connection.query("SELECT pg_backend_pid() AS pid").rows[0].int("pid")
            try await TestDatabase.terminate(pid: pid)
            let error = await capturePostgresError { _ = try await connection.query("SELECT 1") }
            guard case .connection(let reason) = error else {
                Issue.record("expected .connection, got \(String(describing: error))")
                return
            }
            #expect(reason.contains(connection.configuration.endpoint))
            #expect(!connection.isHealthy)
            // It stays broken, and says so.
            let again = await capturePostgresError { _ = try await connection.query("SELECT 1") }
            #expect(again?.isConnectionError == true)
        }

        @Test func terminatedDuringAQueryIsAConnectionError() async throws {
            let connection = try await TestDatabase.connect()
            defer { connection.close() }
            let pid = try await connection.query("SELECT pg_backend_pid() AS pid").rows[0].int("pid")
            async let outcome: PostgresError? = capturePostgresError { _ = try await connection.query("SELECT pg_sleep(5)") }
            try await Task.sleep(for: .milliseconds(200))
            try await TestDatabase.terminate(pid: pid)
            let error = await outcome
            #expect(error?.isConnectionError == true, "\(String(describing: error))")
            #expect(!connection.isHealthy)
        }
    }
}
