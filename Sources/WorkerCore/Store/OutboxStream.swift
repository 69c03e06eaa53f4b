import RedisClient

/// One consumer's side of a stream read through a consumer group, for the daemon's own durable
/// streams (`P:records`, `P:outcomes`): entries are read, worked on, then acknowledged; the same call
/// trims the stream's head up to its oldest entry not yet done, so once a consumer has caught up the
/// stream is empty. An entry whose consumer died stays pending and is claimed by another after
/// `claimIdle`; a live consumer renews what it holds.
struct OutboxStream: Sendable {
    let key: String
    let group: String
    let consumer: String
    let redis: RedisConnection
    let scripts: ScriptRunner

    init(key: String, group: String, consumer: String, redis: RedisConnection) {
        self.key = key
        self.group = group
        self.consumer = consumer
        self.redis = redis
        self.scripts = ScriptRunner(redis: redis)
    }

    /// Creates the group at id 0 (with MKSTREAM) unless it exists.
    func ensureGroup() async throws {
        do {
            _ = try await redis.send(RedisCommand(["XGROUP", "CREATE", key, group, "0", "MKSTREAM"]))
        } catch RedisError.server(let message) where message.hasPrefix("BUSYGROUP") {
            return
        }
    }

    /// New entries for this consumer, blocking up to `blockMilliseconds` on `connection` (a connection of the caller's own).
    func read(count: Int, blockMilliseconds: Int, on connection: RedisConnection) async throws -> [StreamEntry] {
        let reply = try await connection.send(
            RedisCommand([
                "XREADGROUP", "GROUP", group, consumer, "COUNT", String(count), "BLOCK", String(blockMilliseconds),
                "STREAMS", key, ">",
            ]))
        var entries: [StreamEntry] = []
        for stream in reply.array ?? [] {
            guard let pair = stream.array, pair.count == 2, let items = pair[1].array else { continue }
            for item in items { if let e = StreamEntry.parse(item) { entries.append(e) } }
        }
        return entries
    }

    /// Entries pending longer than `idleMilliseconds` with any consumer (a dead one), now this one's.
    func claim(idleMilliseconds: Int, count: Int) async throws -> [StreamEntry] {
        let reply = try await redis.send(
            RedisCommand([
                "XAUTOCLAIM", key, group, consumer, String(idleMilliseconds), "0-0", "COUNT", String(count),
            ]))
        guard let parts = reply.array, parts.count >= 2, let items = parts[1].array else { return [] }
        // Entries deleted meanwhile come back without fields; they are done already.
        return items.compactMap(StreamEntry.parse).filter { !$0.fields.isEmpty }
    }

    /// Resets the idle time of entries this consumer still works on.
    func renew(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        var cmd = RedisCommand(["XCLAIM", key, group, consumer, "0"])
        for id in ids { cmd.append(id) }
        cmd.append("JUSTID")
        _ = try await redis.send(cmd)
    }

    /// Acknowledges entries and trims what is done from the stream's head, in one atomic call
    /// (`Scripts.outboxDone`): deleting each entry by id would search its stream node for it, while
    /// trimming drops whole nodes.
    func done(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        _ = try await scripts.run(Scripts.outboxDone, keys: [key], args: [group] + ids)
    }

    /// How many entries wait (delivered and not acknowledged, or not delivered yet: the entries
    /// before them are done) and the age in seconds of the oldest.
    func backlog(nowMilliseconds: Int64) async throws -> (count: Int, oldestSeconds: Double) {
        let reply = try await scripts.run(Scripts.outboxBacklog, keys: [key], args: [group])
        guard let parts = reply.array, parts.count == 2 else { throw RedisError.protocolError("backlog answered \(reply)") }
        let count = Int(parts[0].int ?? 0)
        let oldest = parts[1].string.flatMap { StreamEntry.idParts($0).milliseconds }
        return (count, oldest.map { max(Double(nowMilliseconds - $0) / 1000, 0) } ?? 0)
    }
}

extension StreamEntry {
    /// The entry's fields by name (the last value wins).
    var fieldMap: [String: [UInt8]] {
        var map: [String: [UInt8]] = [:]
        map.reserveCapacity(fields.count)
        for (name, value) in fields { map[name] = value }
        return map
    }

    /// The entry id as one increasing number (milliseconds · 2²⁰ + sequence): the order of records.
    var sequence: Int64 {
        let (ms, seq) = StreamEntry.idParts(id)
        return (ms ?? 0) << 20 | min(seq, (1 << 20) - 1)
    }
}
