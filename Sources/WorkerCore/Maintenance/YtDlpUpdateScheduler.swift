import Foundation
import JSON
import Logging
import Synchronization
import WorkerConfig

/// Enqueues this daemon's own `youtube.update` every `youtube.update.every`, when yt-dlp is
/// managed and the channel is not off (contract section 13: per host, not once per cluster, since
/// each host has a yt-dlp of its own; so not the leader's `Scheduler`).
///
/// Ticks are whole multiples of `every` since the epoch, as for `every:` schedules; the first is
/// the one after the daemon starts (the start-up installs a yt-dlp when none is there). The job id
/// names the daemon and the tick (`schedule:youtube.update:<consumer>:<tick>`), so a tick is one
/// job; its payload names the daemon (`host`), so another daemon that takes it hands it back, and
/// gives up on it after one period (`until`).
struct YtDlpUpdateScheduler: Maintainer {
    let services: WorkerServices
    let consumer: String
    let logger: Logger
    /// The last tick fired (epoch ms), per spec; nil before the first run.
    private let last = LastTick()

    /// Holds the last tick; a class so the maintainer stays a copyable struct.
    final class LastTick: Sendable {
        let value = Mutex<(spec: Int64, tick: Int64)?>(nil)
        func withLock<R>(_ body: (inout (spec: Int64, tick: Int64)?) -> R) -> R { value.withLock { body(&$0) } }
    }

    init(services: WorkerServices, consumer: String, logger: Logger) {
        self.services = services
        self.consumer = consumer
        self.logger = logger
    }

    var name: String { "scheduling this host's youtube.update" }

    func interval(_ configuration: WorkerConfiguration) -> Duration { .seconds(1) }

    /// The job id of this daemon's update for `tick`.
    static func jobID(consumer: String, tick: Int64) -> String { "schedule:youtube.update:\(consumer):\(tick)" }

    func runOnce(_ configuration: WorkerConfiguration) async throws {
        let youtube = configuration.youtube
        guard youtube.managed, youtube.update.channel != "off" else { return }
        let every = max(Int64((youtube.update.every * 1000).rounded()), 1000)
        let now = Timestamp.nowMilliseconds()
        let previous: Int64 = last.withLock { state in
            if let state, state.spec == every { return state.tick }
            state = (every, now)
            return now
        }
        guard let due = ScheduleTiming.due(.every(milliseconds: every), last: previous, now: now) else { return }
        let id = Self.jobID(consumer: consumer, tick: due.tick)
        let payload = "{\"host\":\(JSONText.quote(consumer)),\"until\":\(due.tick + every)}"
        try await services.enqueue(
            JobEnvelope(id: id, type: YtDlpUpdateHandler.type, payloadJSON: payload), queue: youtube.update.queue)
        last.withLock { $0 = (every, due.tick) }
        logger.info(
            "youtube.update scheduled for this host",
            metadata: ["jobId": "\(id)", "queue": "\(youtube.update.queue)", "channel": "\(youtube.update.channel)"])
    }
}
