import Logging
import Synchronization
import WorkerConfig

/// A one-shot signal many tasks can wait for.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    var isOpen: Bool { state.withLock { $0.open } }

    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard !s.open else { return [] }
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        waiters.forEach { $0.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if ready { c.resume() }
        }
    }
}

/// What the daemon's services share besides their clients: the configuration in force, the
/// queues paused cluster-wide, whether this daemon drains, and whether it is shutting down.
final class WorkerState: Sendable {
    private let config: Mutex<WorkerConfiguration>
    private let pausedQueues = Mutex<Set<String>>([])
    private let draining = Atomic<Bool>(false)
    /// Opens when shutdown begins.
    let stopping = Gate()
    /// Opens once the queues are consumed.
    let ready = Gate()
    let logger: Logger

    init(configuration: WorkerConfiguration, logger: Logger) {
        self.config = Mutex(configuration)
        self.logger = logger
    }

    var configuration: WorkerConfiguration { config.withLock { $0 } }
    func setConfiguration(_ c: WorkerConfiguration) { config.withLock { $0 = c } }

    var isDraining: Bool { draining.load(ordering: .relaxed) }
    func setDraining(_ on: Bool) { draining.store(on, ordering: .relaxed) }
    var isShuttingDown: Bool { stopping.isOpen }

    var paused: Set<String> { pausedQueues.withLock { $0 } }
    func isPaused(_ queue: String) -> Bool { pausedQueues.withLock { $0.contains(queue) } }

    /// Replaces the paused set (logged when it changes).
    func setPaused(_ queues: Set<String>) {
        let changed = pausedQueues.withLock { p -> Bool in
            defer { p = queues }
            return p != queues
        }
        if changed { logger.notice("paused queues", metadata: ["paused": "\(queues.sorted().joined(separator: ","))"]) }
    }

    func updatePaused(_ queue: String, paused: Bool) {
        var set = self.paused
        if paused { set.insert(queue) } else { set.remove(queue) }
        setPaused(set)
    }
}
