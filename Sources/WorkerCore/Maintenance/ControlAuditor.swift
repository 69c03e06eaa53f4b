import RedisClient

extension RedisKeys {
    /// `P:audit:cursor`: id of the last `P:control` entry recorded in the audit trail.
    package var auditCursor: String { "\(prefix):audit:cursor" }
}

/// Records the commands added to `P:control` in the audit trail (the leader does it, once per cluster).
struct ControlAuditor: Sendable {
    let redis: RedisConnection
    let keys: RedisKeys
    let trail: AuditTrail

    /// Records the commands added to `P:control` since the last call in the `audit` table. A command names its sender in a `by` field when the
    /// control socket sent it (with `peerUid`, `peerPid`, `host`); any other is the API's (`api`).
    /// The cursor moves only once the rows are written, so a database outage delays them.
    func auditControlStream() async throws {
        let cursorKey = keys.auditCursor
        guard let cursor = try await redis.send(RedisCommand(["GET", cursorKey])).string else {
            // First run: start at the stream's end rather than record history.
            let tail = try await redis.send(RedisCommand(["XREVRANGE", keys.control, "+", "-", "COUNT", "1"]))
            let last = tail.array?.first.flatMap(StreamEntry.parse)?.id ?? "0-0"
            _ = try await redis.send(RedisCommand(["SET", cursorKey, last, "NX"]))
            return
        }
        let reply = try await redis.send(RedisCommand(["XRANGE", keys.control, "(" + cursor, "+", "COUNT", "500"]))
        let entries = (reply.array ?? []).compactMap(StreamEntry.parse)
        guard let lastID = entries.last?.id else { return }
        var rows: [AuditEntry] = []
        for entry in entries {
            var fields: [String: String] = [:]
            for (k, v) in entry.fields { fields[k] = String(decoding: v, as: UTF8.self) }
            guard let command = fields["cmd"] else { continue }
            let by = fields["by"]
            rows.append(
                AuditEntry(
                    at: entry.addedAtMilliseconds ?? Timestamp.nowMilliseconds(),
                    actor: by ?? "api", peerUID: fields["peerUid"].flatMap { Int($0) },
                    peerPID: fields["peerPid"].flatMap { Int($0) },
                    source: by == nil ? "control-stream" : "socket", action: String(command.prefix(64)),
                    target: (fields["queue"] ?? fields["jobId"]).map { String($0.prefix(200)) },
                    ok: true, detail: fields["host"].map { "sent through P:control from \($0)" } ?? "sent through P:control",
                    controlEntry: entry.id))
        }
        try await trail.add(rows)
        _ = try await redis.send(RedisCommand(["SET", cursorKey, lastID]))
    }
}
