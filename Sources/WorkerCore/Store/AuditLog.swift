import Logging
import PostgresClient

/// One control action for the audit trail (table `audit`, migration 4).
public struct AuditEntry: Sendable, Equatable {
    /// When it happened, epoch milliseconds.
    public var at: Int64
    /// Who asked: `uid 1000 (alice)` for a control socket peer, `api` for a command that came
    /// through `P:control` without a named sender.
    public var actor: String
    /// The peer's uid and pid, for socket requests.
    public var peerUID: Int?
    public var peerPID: Int?
    /// `socket` or `control-stream`.
    public var source: String
    /// The request: pause, resume, drain, undrain, cancel, retry, reload.
    public var action: String
    /// What it was applied to: a queue name or a job id.
    public var target: String?
    /// Whether it was carried out.
    public var ok: Bool
    /// The outcome or the refusal, as the answer said it.
    public var detail: String?
    /// The `P:control` entry the command travelled in, if any: the row is written once for it.
    public var controlEntry: String?

    public init(at: Int64 = Timestamp.nowMilliseconds(), actor: String, peerUID: Int? = nil, peerPID: Int? = nil,
                source: String, action: String, target: String? = nil, ok: Bool, detail: String? = nil,
                controlEntry: String? = nil) {
        self.at = at
        self.actor = actor
        self.peerUID = peerUID
        self.peerPID = peerPID
        self.source = source
        self.action = action
        self.target = target
        self.ok = ok
        self.detail = detail
        self.controlEntry = controlEntry
    }
}

extension Worker {
    /// Writes control actions to the `audit` table in one statement. Entries whose `controlEntry`
    /// is already recorded are skipped, so every daemon may record the same `P:control` command.
    public func audit(_ entries: [AuditEntry]) async throws {
        guard !entries.isEmpty else { return }
        _ = try await postgres.query("""
            INSERT INTO audit (at, actor, peer_uid, peer_pid, source, action, target, ok, detail, worker, control_entry)
            SELECT to_timestamp(a.ms / 1000.0), a.actor, a.uid, a.pid, a.source, a.action, a.target, a.ok, a.detail, $10, a.entry
            FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::text[], $6::text[], $7::text[], $8::boolean[],
                        $9::text[], $11::text[]) AS a(ms, actor, uid, pid, source, action, target, ok, detail, entry)
            ON CONFLICT (control_entry) DO NOTHING
            """, [
                PostgresBind(array: entries.map { Optional($0.at) }),
                PostgresBind(array: entries.map { Optional($0.actor) }),
                PostgresBind(array: entries.map(\.peerUID)),
                PostgresBind(array: entries.map(\.peerPID)),
                PostgresBind(array: entries.map { Optional($0.source) }),
                PostgresBind(array: entries.map { Optional($0.action) }),
                PostgresBind(array: entries.map(\.target)),
                PostgresBind(array: entries.map { Optional($0.ok ? "true" : "false") }),
                PostgresBind(array: entries.map(\.detail)),
                PostgresBind(consumer),
                PostgresBind(array: entries.map(\.controlEntry)),
            ])
    }

    /// Writes one control action to the audit trail and the log; a database that cannot be reached
    /// loses the row (the log line stays), never the action.
    public func recordAudit(_ entry: AuditEntry) async {
        var metadata: Logger.Metadata = ["actor": "\(entry.actor)", "action": "\(entry.action)", "ok": "\(entry.ok)",
                                         "source": "\(entry.source)"]
        if let target = entry.target { metadata["target"] = "\(target)" }
        if let detail = entry.detail { metadata["detail"] = "\(detail)" }
        logger.notice("control action", metadata: metadata)
        do {
            try await audit([entry])
        } catch {
            logger.warning("audit row not written: PostgreSQL did not take it", metadata: ["error": "\(error)", "action": "\(entry.action)"])
        }
    }
}
