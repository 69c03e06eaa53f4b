import Foundation

/// A dedicated OS thread that runs submitted jobs one after another, in order.
///
/// Each `PostgresConnection` owns one, so that every blocking libpq call runs here and
/// never on Swift's cooperative thread pool.
///
/// `@unchecked Sendable` invariant: the mutable fields `jobs` and `stopping` are only
/// touched while `condition` is locked; the thread itself is started once in `init`
/// and never touched again.
final class ConnectionThread: @unchecked Sendable {
    typealias Job = @Sendable () -> Void

    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var head = 0
    private var stopping = false

    /// Starts a thread named `name` that waits for jobs.
    init(name: String) {
        let thread = Thread { [self] in self.runLoop() }
        thread.name = name
        thread.start()
    }

    /// Queues `job` to run on the thread. Returns `false` (and drops the job) once
    /// `stop()` has been called.
    @discardableResult
    func submit(_ job: @escaping Job) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if stopping { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    /// Queues `job` as the last one: the thread runs everything queued so far, then
    /// `job`, then exits. Later submissions are refused. Returns `false` if the thread
    /// was already stopping (the job is not run).
    @discardableResult
    func stop(after job: @escaping Job) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if stopping { return false }
        jobs.append(job)
        stopping = true
        condition.signal()
        return true
    }

    private func runLoop() {
        while true {
            condition.lock()
            while head == jobs.count && !stopping {
                condition.wait()
            }
            if head == jobs.count {
                // Stopping, and nothing left to run.
                jobs.removeAll()
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            condition.unlock()
            job()
        }
    }
}
