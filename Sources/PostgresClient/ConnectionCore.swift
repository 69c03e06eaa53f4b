import CLibPQ
import Foundation

/// What the pool and callers may read about a connection from any thread.
struct ConnectionState: Sendable {
    /// False once the connection is known broken (lost, or libpq's state is unknown).
    var healthy = true
    /// True once `close()` was called.
    var closed = false
    /// True while a transaction block is open (`BEGIN` without `COMMIT`/`ROLLBACK` yet),
    /// including one that failed and awaits `ROLLBACK`.
    var inTransaction = false
}

/// The libpq side of one connection: the `PGconn`, the prepared-statement cache and every
/// libpq call.
///
/// `@unchecked Sendable` invariant: after `init`, every method and every mutable field
/// (`connection`, `statements`, `nextStatementNumber`, `lastFatalNotice`) is used only
/// from jobs running on the connection's own `ConnectionThread`, which runs them one at a
/// time; the only field shared with other threads is `state`, which guards itself with a
/// lock. So no two threads ever touch the `PGconn` or the cache at once.
final class ConnectionCore: @unchecked Sendable {
    /// Prepared statements kept per connection before the cache is reset with
    /// `DEALLOCATE ALL` (bounds server memory when SQL text is generated dynamically).
    static let statementCacheLimit = 256

    let configuration: PostgresConfiguration
    let state: LockedState<ConnectionState>

    private var connection: OpaquePointer?
    /// SQL text → name of the server-side prepared statement (`s1`, `s2`, …).
    private var statements: [String: String] = [:]
    private var nextStatementNumber = 1
    /// The last FATAL or PANIC message the server sent outside a query (e.g. before it
    /// closed the connection while idle), used to explain a lost connection.
    fileprivate var lastFatalNotice: String?

    init(configuration: PostgresConfiguration, state: LockedState<ConnectionState>) {
        self.configuration = configuration
        self.state = state
    }

    deinit {
        // Normally `finish()` already ran on the connection's thread; this only guards
        // against a leak if a connection was abandoned half-made.
        if let connection { PQfinish(connection) }
    }

    // MARK: Connecting and closing

    /// Connects (blocking, bounded by `connect_timeout`).
    func connect() throws(PostgresError) {
        let parameters = configuration.libpqParameters
        if parameters.contains(where: { $0.0.contains("\0") || $0.1.contains("\0") }) {
            throw .invalidURL("a connection parameter contains a NUL character")
        }
        let keywords = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keywordPointers = keywords.map { UnsafePointer($0) } + [nil]
        let valuePointers = values.map { UnsafePointer($0) } + [nil]
        let made = PQconnectdbParams(keywordPointers, valuePointers, 0)
        guard let made else {
            throw .connection("could not connect to \(configuration.endpoint): libpq could not allocate a connection")
        }
        guard PQstatus(made) == CONNECTION_OK else {
            let reason = Self.clean(PQerrorMessage(made))
            PQfinish(made)
            throw .connection("could not connect to \(configuration.endpoint): \(configuration.scrub(reason))")
        }
        connection = made
        PQsetNoticeReceiver(made, noticeReceiver, Unmanaged.passUnretained(self).toOpaque())

        // Row decoding reads timestamps as DateStyle ISO prints them; make sure it is in force.
        if let dateStyle = PQparameterStatus(made, "DateStyle"), !String(cString: dateStyle).hasPrefix("ISO") {
            let result = PQexec(made, "SET DateStyle = 'ISO, MDY'")
            defer { PQclear(result) }
            if PQresultStatus(result) != PGRES_COMMAND_OK {
                let error = self.error(from: result)
                finish()
                throw error
            }
        }
    }

    /// Closes the connection (sends Terminate, frees the `PGconn`).
    func finish() {
        if let connection {
            PQfinish(connection)
            self.connection = nil
        }
        statements.removeAll()
        state.withLock {
            $0.healthy = false
            $0.inTransaction = false
        }
    }

    // MARK: Health

    /// Reads whatever the server sent while the connection sat idle, without blocking,
    /// and throws `.connection` if the connection turns out to be gone. Nothing has been
    /// sent when this throws, so the caller may safely retry elsewhere.
    func preflight() throws(PostgresError) {
        guard let connection else { throw .closed }
        if PQstatus(connection) == CONNECTION_OK, Self.isReadable(PQsocket(connection)) {
            // An idle connection has something to read only when the server sent a
            // notice or closed it. One read may return the server's FATAL message; the
            // next one sees the EOF.
            if PQconsumeInput(connection) == 1 { _ = PQconsumeInput(connection) }
            // LISTEN is not supported; drop any notifications so they do not pile up.
            while let notification = PQnotifies(connection) { PQfreemem(notification) }
        }
        if PQstatus(connection) != CONNECTION_OK || lastFatalNotice != nil {
            let reason = lastFatalNotice ?? Self.clean(PQerrorMessage(connection))
            markBroken()
            throw .connection("connection to \(configuration.endpoint) was lost: \(configuration.scrub(reason))")
        }
    }

    /// Whether `socket` has data (or EOF) to read right now, without waiting.
    private static func isReadable(_ socket: Int32) -> Bool {
        guard socket >= 0 else { return true }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) != 0
    }

    private func markBroken() {
        state.withLock { $0.healthy = false }
    }

    private func updateTransactionState() {
        guard let connection else { return }
        let status = PQtransactionStatus(connection)
        state.withLock {
            $0.inTransaction = status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE
            if status == PQTRANS_UNKNOWN { $0.healthy = false }
        }
    }

    fileprivate func receiveNotice(_ result: OpaquePointer) {
        guard let severity = PQresultErrorField(result, Self.field("V")) else { return }
        let level = String(cString: severity)
        if level == "FATAL" || level == "PANIC" {
            lastFatalNotice =
                PQresultErrorField(result, Self.field("M")).map { String(cString: $0) }
                ?? Self.clean(PQresultErrorMessage(result))
        }
    }

    // MARK: Statements

    /// Runs one parameterized statement through the prepared-statement cache.
    func query(_ sql: String, _ binds: [PostgresBind]) throws(PostgresError) -> PostgresResult {
        guard let connection else { throw .closed }
        try Self.checkNoNUL(sql, binds)
        var retried = false
        while true {
            let name = try preparedName(for: sql, on: connection)
            let result = Self.withCStrings(binds.map(\.text)) { pointers in
                PQexecPrepared(connection, name, Int32(pointers.count), pointers, nil, nil, 0)
            }
            defer { PQclear(result) }
            do throws(PostgresError) {
                let outcome = try check(result)
                noteCommand(outcome.commandTag)
                return outcome
            } catch {
                // The server forgot the statement (DISCARD ALL, DEALLOCATE) or its plan's
                // result type changed (the table changed): prepare it afresh, once.
                // Only outside a transaction block: inside one, the failure aborted it.
                guard Self.isStaleStatement(error) else { throw error }
                statements[sql] = nil
                guard !retried, PQtransactionStatus(connection) == PQTRANS_IDLE else { throw error }
                retried = true
            }
        }
    }

    /// Runs SQL text without parameters, possibly several statements (`PQexec`).
    /// Returns the command tag of the last statement.
    @discardableResult
    func execute(script sql: String) throws(PostgresError) -> String {
        guard let connection else { throw .closed }
        if sql.contains("\0") {
            throw .query(message: "the SQL text contains a NUL character", sqlState: "22021", detail: nil)
        }
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        let lowered = sql.lowercased()
        if lowered.contains("discard") || lowered.contains("deallocate") {
            statements.removeAll()
        }
        return try check(result).commandTag
    }

    /// Like `execute(script:)` but leaves the statement cache alone (tests use it to make
    /// the server forget statements behind the cache's back).
    func executeIgnoringCache(_ sql: String) throws(PostgresError) {
        guard let connection else { throw .closed }
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        _ = try check(result)
    }

    /// The number of statements in the cache.
    var cachedStatementCount: Int { statements.count }

    private func preparedName(for sql: String, on connection: OpaquePointer) throws(PostgresError) -> String {
        if let name = statements[sql] { return name }
        if statements.count >= Self.statementCacheLimit, PQtransactionStatus(connection) == PQTRANS_IDLE {
            let reset = PQexec(connection, "DEALLOCATE ALL")
            PQclear(reset)
            statements.removeAll()
        }
        let name = "s\(nextStatementNumber)"
        nextStatementNumber += 1
        let result = PQprepare(connection, name, sql, 0, nil)
        defer { PQclear(result) }
        _ = try check(result)
        statements[sql] = name
        return name
    }

    private func noteCommand(_ tag: String) {
        if tag.hasPrefix("DISCARD") || tag.hasPrefix("DEALLOCATE") {
            statements.removeAll()
        }
    }

    private static func isStaleStatement(_ error: PostgresError) -> Bool {
        guard case .query(let message, let sqlState, _) = error else { return false }
        return sqlState == "26000"
            || (sqlState == "0A000" && message.contains("cached plan must not change result type"))
    }

    // MARK: Results

    /// Turns a `PGresult` into a `PostgresResult` or the matching error. Does not free it.
    private func check(_ result: OpaquePointer?) throws(PostgresError) -> PostgresResult {
        defer { updateTransactionState() }
        let status = result.map { PQresultStatus($0) } ?? PGRES_FATAL_ERROR
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return Self.makeResult(result!)
        case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            abandonCopy(status)
            throw .query(message: "COPY is not supported by PostgresClient", sqlState: nil, detail: nil)
        default:
            throw error(from: result)
        }
    }

    private func error(from result: OpaquePointer?) -> PostgresError {
        let sqlState = result.flatMap { PQresultErrorField($0, Self.field("C")) }.map { String(cString: $0) }
        let connectionGone = connection.map { PQstatus($0) != CONNECTION_OK } ?? true
        if connectionGone || sqlState.map(Self.fatalSQLStates.contains) == true {
            markBroken()
            let reason =
                result.flatMap { PQresultErrorField($0, Self.field("M")) }.map { String(cString: $0) }
                ?? lastFatalNotice
                ?? connection.map { Self.clean(PQerrorMessage($0)) }
                ?? "the connection is closed"
            return .connection("connection to \(configuration.endpoint) was lost: \(configuration.scrub(Self.clean(reason)))")
        }
        guard let result else {
            let reason = connection.map { Self.clean(PQerrorMessage($0)) } ?? "no result"
            return .query(message: configuration.scrub(reason), sqlState: nil, detail: nil)
        }
        let message =
            PQresultErrorField(result, Self.field("M")).map { String(cString: $0) }
            ?? Self.clean(PQresultErrorMessage(result))
        let detail = PQresultErrorField(result, Self.field("D")).map { String(cString: $0) }
        return .query(message: message, sqlState: sqlState, detail: detail)
    }

    /// SQLSTATEs after which the server closes the session.
    private static let fatalSQLStates: Set<String> = ["57P01", "57P02", "57P03"]

    /// Leaves COPY mode so the connection stays usable.
    private func abandonCopy(_ status: ExecStatusType) {
        guard let connection else { return }
        if status == PGRES_COPY_IN || status == PGRES_COPY_BOTH {
            _ = PQputCopyEnd(connection, "COPY is not supported by PostgresClient")
        }
        if status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
            var buffer: UnsafeMutablePointer<CChar>?
            while PQgetCopyData(connection, &buffer, 0) >= 0 {
                if let data = buffer { PQfreemem(data) }
                buffer = nil
            }
        }
        while let pending = PQgetResult(connection) { PQclear(pending) }
    }

    private static func makeResult(_ result: OpaquePointer) -> PostgresResult {
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        let positions = PostgresRow.positions(of: columns)
        var rows: [PostgresRow] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(Int(columnCount))
            for column in 0..<columnCount {
                if PQgetisnull(result, row, column) == 1 {
                    values.append(nil)
                } else {
                    let length = Int(PQgetlength(result, row, column))
                    let bytes = UnsafeRawBufferPointer(start: PQgetvalue(result, row, column), count: length)
                    values.append(String(decoding: bytes, as: UTF8.self))
                }
            }
            rows.append(PostgresRow(columns: columns, positions: positions, values: values))
        }
        let affected = PQcmdTuples(result).map { Int(String(cString: $0)) ?? 0 } ?? 0
        let tag = PQcmdStatus(result).map { String(cString: $0) } ?? ""
        return PostgresResult(rows: rows, affectedRows: affected, commandTag: tag)
    }

    // MARK: Helpers

    private static func checkNoNUL(_ sql: String, _ binds: [PostgresBind]) throws(PostgresError) {
        // Byte scans: `String.contains(String)` goes through Foundation's search, far slower on large binds.
        if sql.utf8.contains(0) {
            throw .query(message: "the SQL text contains a NUL character", sqlState: "22021", detail: nil)
        }
        if let position = binds.firstIndex(where: { $0.text?.utf8.contains(0) == true }) {
            throw .query(
                message: "parameter $\(position + 1) contains a NUL character, which PostgreSQL text cannot hold",
                sqlState: "22021", detail: nil)
        }
    }

    /// Calls `body` with C strings for `texts` (NULL pointers for `nil`), freed afterwards.
    private static func withCStrings<R>(
        _ texts: [String?], _ body: ([UnsafePointer<CChar>?]) -> R
    ) -> R {
        let copies = texts.map { $0.flatMap { strdup($0) } }
        defer { copies.forEach { free($0) } }
        return body(copies.map { $0.map { UnsafePointer($0) } })
    }

    /// A libpq message on one line: trimmed, with its line breaks and tabs folded.
    static func clean(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown error" }
        return clean(String(cString: message))
    }

    static func clean(_ message: String) -> String {
        let lines = message.split(whereSeparator: \.isNewline)
            .map { line -> String in
                var text = line.trimmingCharacters(in: .whitespaces)
                for prefix in ["FATAL:", "ERROR:", "PANIC:"] where text.hasPrefix(prefix) {
                    text = text.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)
                }
                return text
            }
            .filter { !$0.isEmpty }
        return lines.isEmpty ? "unknown error" : lines.joined(separator: "; ")
    }

    /// A `PG_DIAG_*` field code (the C macros are character literals).
    private static func field(_ code: Character) -> Int32 {
        Int32(code.asciiValue!)
    }
}

/// Receives notices and warnings libpq reads on the connection's thread. Keeps FATAL
/// messages (to explain a lost connection) and drops the rest rather than printing them
/// to stderr as libpq's default receiver would.
private func noticeReceiver(_ argument: UnsafeMutableRawPointer?, _ result: OpaquePointer?) {
    guard let argument, let result else { return }
    Unmanaged<ConnectionCore>.fromOpaque(argument).takeUnretainedValue().receiveNotice(result)
}
