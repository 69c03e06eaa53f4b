import Synchronization

/// Why a running job is being stopped from outside.
package enum StopReason: String, Sendable {
    /// A user or admin cancelled it: it ends `cancelled`.
    case cancel
    /// Its attempt ran past its timeout: it counts as a retryable failure.
    case timeout
    /// The daemon is shutting down or draining: it goes back to the queue, the attempt uncounted.
    case shutdown
}

/// A job this daemon is running now.
package final class RunningJob: Sendable {
    package let held: HeldJob
    package let startedAt: ContinuousClock.Instant
    package let startedAtMilliseconds: Int64
    package let deadline: ContinuousClock.Instant
    package let timeoutSeconds: Double
    let context: JobContext
    private let stop = Mutex<StopReason?>(nil)
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(held: HeldJob, timeoutSeconds: Double, context: JobContext) {
        self.held = held
        self.startedAt = .now
        self.startedAtMilliseconds = Timestamp.nowMilliseconds()
        self.timeoutSeconds = timeoutSeconds
        self.deadline = .now + .milliseconds(Int64(timeoutSeconds * 1000))
        self.context = context
    }

    /// The first reason it was asked to stop, if any.
    package var stopReason: StopReason? { stop.withLock { $0 } }

    func attach(_ t: Task<Void, Never>) {
        let stopNow = task.withLock { current -> Bool in
            current = t
            return stop.withLock { $0 } != nil
        }
        if stopNow { t.cancel() }
    }

    /// Forgets its task once the task's body has returned (nothing is left to cancel).
    func detach() {
        task.withLock { $0 = nil }
    }

    /// Asks the job to stop; the first reason wins. Returns false when it was already stopping.
    @discardableResult
    func requestStop(_ reason: StopReason) -> Bool {
        let first = stop.withLock { current -> Bool in
            guard current == nil else { return false }
            current = reason
            return true
        }
        if first { task.withLock { $0 }?.cancel() }
        return first
    }
}

/// Slots per queue and the set of jobs running in this daemon.
package final class WorkerPool: Sendable {
    struct State {
        var running: [String: RunningJob] = [:]
        var active: [String: Int] = [:]
        /// Slots promised to entries read but not yet started.
        var reserved: [String: Int] = [:]
        /// Jobs whose handler has returned and whose end is being recorded, their slot given on.
        var recording: Set<String> = []
        var recordingCount: [String: Int] = [:]
        var limits: [String: Int] = [:]
        var slotWaiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    }
    private let state = Mutex(State())

    package init(limits: [String: Int]) {
        state.withLock { $0.limits = limits }
    }

    /// Changes the slot counts (reload). Jobs above a lowered limit finish; no new ones start until below it.
    package func setLimits(_ limits: [String: Int]) {
        let wake = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.limits = limits
            var woken: [CheckedContinuation<Void, Never>] = []
            for (queue, waiters) in s.slotWaiters where (limits[queue] ?? 0) > (s.active[queue] ?? 0) {
                woken += waiters
                s.slotWaiters[queue] = []
            }
            return woken
        }
        wake.forEach { $0.resume() }
    }

    package func freeSlots(queue: String) -> Int {
        state.withLock { max(($0.limits[queue] ?? 0) - ($0.active[queue] ?? 0) - ($0.reserved[queue] ?? 0), 0) }
    }

    /// Holds slots for entries being admitted, so the next read does not take more than fits.
    package func reserve(queue: String, count: Int) {
        state.withLock { $0.reserved[queue, default: 0] += count }
    }

    /// Gives reserved slots back (the entries have started or were not to run).
    package func release(queue: String, count: Int) {
        let wake = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.reserved[queue, default: count] -= count
            let w = s.slotWaiters[queue] ?? []
            s.slotWaiters[queue] = []
            return w
        }
        wake.forEach { $0.resume() }
    }

    package func activeCount(queue: String) -> Int { state.withLock { $0.active[queue] ?? 0 } }
    package var activeTotal: Int { state.withLock { $0.running.count } }
    package var runningJobs: [RunningJob] { state.withLock { Array($0.running.values) } }
    package func isRunning(jobID: String) -> Bool { state.withLock { $0.running[jobID] != nil } }
    package func job(_ id: String) -> RunningJob? { state.withLock { $0.running[id] } }

    /// Entry ids of the jobs running for a queue (for lease renewal).
    package func entryIDs(queue: String) -> [String] {
        state.withLock { s in s.running.values.filter { $0.held.descriptor.queue == queue }.map(\.held.entryID) }
    }

    /// Waits until the queue has a free slot (or the task is cancelled; a reload also wakes it).
    package func waitForSlot(queue: String) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { s -> Bool in
                    if (s.limits[queue] ?? 0) > (s.active[queue] ?? 0) + (s.reserved[queue] ?? 0) { return true }
                    s.slotWaiters[queue, default: []].append(c)
                    return false
                }
                if ready { c.resume() }
            }
        } onCancel: {
            let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                let w = s.slotWaiters[queue] ?? []
                s.slotWaiters[queue] = []
                return w
            }
            waiters.forEach { $0.resume() }
        }
    }

    /// Starts a job: takes a slot (one of the queue's reserved slots, when `reserved`) and runs `body`
    /// in a task of its own. The slot is given back when `body` returns.
    func start(_ job: RunningJob, reserved: Bool = false, body: @escaping @Sendable (RunningJob) async -> Void) {
        let id = job.held.descriptor.id
        let queue = job.held.descriptor.queue
        state.withLock { s in
            s.running[id] = job
            s.active[queue, default: 0] += 1
            // The reservation becomes the running slot in the same step, so the free count never dips.
            if reserved { s.reserved[queue, default: 1] -= 1 }
        }
        let task = Task {
            await body(job)
            // The task's closure holds the job and the job holds the task: let go of the task, or
            // neither is ever freed.
            job.detach()
            self.finished(id: id, queue: queue)
        }
        job.attach(task)
    }

    /// The job's handler has returned; what is left is recording how it ended (one script call, in a
    /// batch with others). Its slot goes to the next job at once, unless as many of the queue's jobs are
    /// being recorded as it has slots (Redis is slow: then a slot waits for its job's record). The job
    /// stays running here until recorded (its lease renewed, its id known, shutdown waiting for it).
    package func handlerReturned(_ job: RunningJob) {
        let id = job.held.descriptor.id
        let queue = job.held.descriptor.queue
        let wake = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard s.running[id] != nil, !s.recording.contains(id),
                (s.recordingCount[queue] ?? 0) < (s.limits[queue] ?? 0)
            else { return [] }
            s.recording.insert(id)
            s.recordingCount[queue, default: 0] += 1
            s.active[queue, default: 1] -= 1
            let woken = s.slotWaiters[queue] ?? []
            s.slotWaiters[queue] = []
            return woken
        }
        wake.forEach { $0.resume() }
    }

    private func finished(id: String, queue: String) {
        let wake = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.running[id] = nil
            if s.recording.remove(id) != nil {
                s.recordingCount[queue, default: 1] -= 1
            } else {
                s.active[queue, default: 1] -= 1
            }
            let woken = s.slotWaiters[queue] ?? []
            s.slotWaiters[queue] = []
            return woken
        }
        wake.forEach { $0.resume() }
    }

    /// Asks a running job to stop. Returns false when it is not running here.
    @discardableResult
    package func stop(jobID: String, reason: StopReason) -> Bool {
        guard let job = state.withLock({ $0.running[jobID] }) else { return false }
        job.requestStop(reason)
        return true
    }

    /// Stops every running job for `reason`.
    package func stopAll(reason: StopReason) {
        for job in runningJobs { job.requestStop(reason) }
    }

    /// Stops the jobs that ran past their deadline. Returns how many.
    func stopOverdue() -> Int {
        let now = ContinuousClock.now
        var n = 0
        for job in runningJobs where job.deadline <= now {
            if job.requestStop(.timeout) { n += 1 }
        }
        return n
    }

    /// Waits until nothing runs, or `timeout` passes. Returns true when idle.
    package func waitUntilIdle(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if activeTotal == 0 { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return activeTotal == 0
    }
}
