import Logging
import RedisClient
import ServiceLifecycle

/// Reads every command in `P:control` (not as a group: each daemon sees each command) and applies it:
/// cancel, pause, resume, check (a subscription). At start it first replays the commands since the last pause/resume folded
/// into `P:paused`, so a pause sent while no daemon ran still holds. It runs until the running jobs
/// are done at shutdown (a cancel still reaches them while they finish).
struct ControlListener: Service, CustomStringConvertible {
    let queue: JobQueue
    let redis: RedisConnection
    let redisConfiguration: RedisConfiguration
    let commands: JobCommands
    let subscriptions: SubscriptionCommands
    let state: WorkerState
    let consumer: String
    let logger: Logger

    var description: String { "control listener" }

    func run() async {
        let connection = blockingConnection(redisConfiguration, name: "\(consumer)-control", blockMilliseconds: 1000)
        defer { connection.close() }
        await cancelWhenGracefulShutdown { [self] in
            await withTaskCancellationHandler {
                await controlLoop(connection)
            } onCancel: {
                connection.close()  // interrupts the blocking read at once
            }
        }
    }

    private func controlLoop(_ connection: RedisConnection) async {
        var lastID: String?
        var failures = 0
        while !Task.isCancelled {
            do {
                if lastID == nil { lastID = try await replayControl() }
                let reply = try await connection.send(
                    RedisCommand([
                        "XREAD", "COUNT", "100", "BLOCK", "1000", "STREAMS", queue.keys.control, lastID!,
                    ]))
                failures = 0
                for stream in reply.array ?? [] {
                    guard let pair = stream.array, pair.count == 2 else { continue }
                    for item in pair[1].array ?? [] {
                        guard let entry = StreamEntry.parse(item) else { continue }
                        lastID = entry.id
                        await applyControl(entry)
                    }
                }
            } catch {
                if Task.isCancelled { break }
                failures += 1
                if failures == 1 { logger.error("cannot read control commands; retrying", metadata: ["error": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 5)), 2000)))
            }
        }
    }

    /// Applies the commands after the last folded pause/resume; returns the id to read on from.
    private func replayControl() async throws -> String {
        let applied = try await redis.send(RedisCommand(["GET", queue.keys.controlApplied])).string
        let start = applied.map { "(" + $0 } ?? "-"
        let reply = try await redis.send(RedisCommand(["XRANGE", queue.keys.control, start, "+", "COUNT", "10000"]))
        var last = applied
        for item in reply.array ?? [] {
            guard let entry = StreamEntry.parse(item) else { continue }
            await applyControl(entry)
            last = entry.id
        }
        if last == nil {
            let tail = try await redis.send(RedisCommand(["XREVRANGE", queue.keys.control, "+", "-", "COUNT", "1"]))
            last = tail.array?.first.flatMap(StreamEntry.parse)?.id
        }
        state.setPaused(try await queue.pausedQueues())
        return last ?? "0-0"
    }

    func applyControl(_ entry: StreamEntry) async {
        var fields: [String: String] = [:]
        for (k, v) in entry.fields { fields[k] = String(decoding: v, as: UTF8.self) }
        let command = fields["cmd"] ?? ""
        do {
            switch command {
            case "cancel":
                guard let id = fields["jobId"], JobEnvelope.isValidID(id) else {
                    logger.warning("control: cancel without a valid jobId ignored", metadata: ["entry": "\(entry.id)"])
                    return
                }
                _ = try await commands.cancel(jobID: id)
            case "pause", "resume":
                guard let name = fields["queue"], JobEnvelope.isValidQueueName(name) else {
                    logger.warning("control: \(command) without a valid queue ignored", metadata: ["entry": "\(entry.id)"])
                    return
                }
                if try await queue.applyPause(queue: name, paused: command == "pause", controlEntryID: entry.id) {
                    logger.notice("queue \(command == "pause" ? "paused" : "resumed")", metadata: ["queue": "\(name)"])
                }
                state.updatePaused(name, paused: try await queue.pausedQueues().contains(name))
            case "check":
                // `check subscription <id or name>`: every daemon reading it enqueues the same job id.
                guard let reference = fields["subscription"], !reference.isEmpty, reference.utf8.count <= 128 else {
                    logger.warning("control: check without a subscription ignored", metadata: ["entry": "\(entry.id)"])
                    return
                }
                do {
                    _ = try await subscriptions.check(reference, tag: "control:\(entry.id)")
                } catch let refusal as SubscriptionCommands.Refusal {
                    logger.warning("control: check refused: \(refusal)", metadata: ["entry": "\(entry.id)"])
                }
            default:
                logger.warning("control: unknown command ignored", metadata: ["cmd": "\(command.prefix(40))", "entry": "\(entry.id)"])
            }
        } catch {
            logger.error("control: could not apply \(command)", metadata: ["error": "\(error)", "entry": "\(entry.id)"])
        }
    }
}
