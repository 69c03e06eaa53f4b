import Logging
import RedisClient

/// One control action for the audit trail (table `audit`, migration 4).
package struct AuditEntry: Sendable, Equatable {
    /// When it happened, epoch milliseconds.
    package var at: Int64
    /// Who asked: `uid 1000 (alice)` for a control socket peer, `api` for a command that came
    /// through `P:control` without a named sender.
    package var actor: String
    /// The peer's uid and pid, for socket requests.
    package var peerUID: Int?
    package var peerPID: Int?
    /// `socket` or `control-stream`.
    package var source: String
    /// The request: pause, resume, drain, undrain, cancel, retry, reload.
    package var action: String
    /// What it was applied to: a queue name or a job id.
    package var target: String?
    /// Whether it was carried out.
    package var ok: Bool
    /// The outcome or the refusal, as the answer said it.
    package var detail: String?
    /// The `P:control` entry the command travelled in, if any: the row is written once for it.
    package var controlEntry: String?

    package init(
        at: Int64 = Timestamp.nowMilliseconds(), actor: String, peerUID: Int? = nil, peerPID: Int? = nil,
        source: String, action: String, target: String? = nil, ok: Bool, detail: String? = nil,
        controlEntry: String? = nil
    ) {
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

/// The audit trail of control actions: rows for the `audit` table, added to the records outbox.
package struct AuditTrail: Sendable {
    let redis: RedisConnection
    let keys: RedisKeys
    let consumer: String
    let logger: Logger

    /// Adds control actions to the records outbox, from which the record writers put them in the
    /// `audit` table. Entries whose `controlEntry` is already recorded are skipped there, so every
    /// daemon may record the same `P:control` command.
    package func add(_ entries: [AuditEntry]) async throws {
        guard !entries.isEmpty else { return }
        let commands = entries.map { entry -> RedisCommand in
            var cmd = RedisCommand(["XADD", keys.records, "*"])
            for (k, v) in entry.outboxFields(worker: consumer) { cmd.append(k); cmd.append(v) }
            return cmd
        }
        for reply in try await redis.pipeline(commands) {
            if case .error(let message) = reply { throw RedisError.server(message) }
        }
    }

    /// Writes one control action to the audit trail and the log. The row is durable once Redis has it;
    /// while Redis is away it is retried for a while (the log line stays either way).
    package func record(_ entry: AuditEntry) async {
        var metadata: Logger.Metadata = [
            "actor": "\(entry.actor)", "action": "\(entry.action)", "ok": "\(entry.ok)",
            "source": "\(entry.source)",
        ]
        if let target = entry.target { metadata["target"] = "\(target)" }
        if let detail = entry.detail { metadata["detail"] = "\(detail)" }
        logger.notice("control action", metadata: metadata)
        var delay = 100
        for attempt in 1...8 {
            do {
                try await add([entry])
                return
            } catch {
                if attempt == 8 {
                    logger.warning(
                        "audit row not recorded: Redis did not take it", metadata: ["error": "\(error)", "action": "\(entry.action)"])
                    return
                }
                try? await Task.sleep(for: .milliseconds(delay))
                delay = min(delay * 2, 2000)
            }
        }
    }
}
