import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a child process ended.
public enum ProcessTermination: Sendable, Equatable, CustomStringConvertible {
    /// It called exit with this status.
    case exited(Int32)
    /// A signal ended it.
    case signalled(Int32)

    public var description: String {
        switch self {
        case .exited(let status): return "exit status \(status)"
        case .signalled(let signal): return "signal \(signal)"
        }
    }
}

/// What a finished child process left behind.
public struct ProcessResult: Sendable {
    /// How it ended.
    public var termination: ProcessTermination
    /// Everything it wrote on stdout, when the run collected stdout (empty otherwise).
    public var stdout: [UInt8]
    /// Its last lines on stderr (at most `ChildProcess.stderrLineLimit`), oldest first.
    public var stderrLines: [String]
    /// Whether stdout was cut at the collection limit.
    public var stdoutTruncated: Bool
}

/// What a run does with the child's stdout.
public enum StdoutHandling: Sendable {
    /// Keep it all (up to `limit` bytes) and return it in the result.
    case collect(limit: Int)
    /// Call the closure with each complete line (without its newline), on the reading thread.
    /// The closure must return quickly; lines longer than 1 MiB are cut.
    case lines(@Sendable (String) -> Void)
}

/// Why a child could not be run.
public enum SpawnFailure: Error, Sendable, Equatable {
    /// The executable does not exist (or is not on `PATH`).
    case notFound(String)
    /// The executable exists but may not be run.
    case notExecutable(String)
    /// Any other failure of posix_spawn, pipe or the like (an errno value).
    case system(String, Int32)
}

/// Runs a program as a child process with an argument array, never through a shell.
///
/// - The child is spawned with `posix_spawn`, with an empty signal mask (a thread of Swift's
///   pool may have signals blocked, and a mask is inherited across exec), with the usual signals
///   reset to their default action (an ignored SIGTERM would be inherited too), in a process
///   group of its own (so that stopping it also stops whatever it started), with stdin on
///   `/dev/null` and every descriptor above stderr closed.
/// - Its stdout and stderr are read by a thread of the run's own, never on the cooperative pool.
/// - Cancelling the calling task sends SIGTERM to the whole group and, if the group is still
///   there after `killGrace`, SIGKILL. The run then throws `CancellationError`.
/// - When the child exits, anything left in its group is killed before the child is reaped, so no
///   grandchild outlives it.
public enum ChildProcess {
    /// How many stderr lines a result keeps.
    public static let stderrLineLimit = 40
    /// Longest line kept, in bytes.
    static let lineLimit = 1 << 20

    /// Runs `executable` (a path, or a name looked up in `PATH`) with `arguments` (argv[1...]) and
    /// `environment`, and waits for it to end.
    ///
    /// - Throws: `SpawnFailure` when it could not be started; `CancellationError` when the task was
    ///   cancelled (the child has then been stopped and reaped).
    public static func run(
        executable: String, arguments: [String], environment: [String: String],
        stdout handling: StdoutHandling, killGrace: Duration = .seconds(1),
        started: (@Sendable (Int32) -> Void)? = nil
    ) async throws -> ProcessResult {
        try Task.checkCancellation()
        let child = try RunningChild.spawn(
            executable: executable, arguments: arguments, environment: environment,
            handling: handling, killGrace: killGrace)
        started?(child.pid)
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ProcessResult, Never>) in
                child.monitor(continuation)
            }
        } onCancel: {
            child.terminate()
        }
        if child.wasTerminated { throw CancellationError() }
        return result
    }

    /// ``run(executable:arguments:environment:stdout:killGrace:started:)`` within `timeout`: a run
    /// that takes longer is stopped as a cancelled one is, and nil is returned.
    ///
    /// - Throws: as `run`; `CancellationError` only when the calling task was cancelled.
    public static func run(
        executable: String, arguments: [String], environment: [String: String],
        stdout handling: StdoutHandling, killGrace: Duration = .seconds(1), timeout: Duration
    ) async throws -> ProcessResult? {
        try await withThrowingTaskGroup(of: ProcessResult?.self) { group in
            group.addTask {
                try await run(
                    executable: executable, arguments: arguments, environment: environment, stdout: handling, killGrace: killGrace)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }
}

/// One spawned child and the thread that reads it.
final class RunningChild: Sendable {
    let pid: pid_t
    private let stdoutFD: Int32
    private let stderrFD: Int32
    private let handling: StdoutHandling
    private let killGrace: Duration

    private struct State {
        /// The child has been reaped: its pid (and group id) may belong to someone else now.
        var reaped = false
        /// `terminate()` was called.
        var terminated = false
    }
    private let state = Mutex(State())

    private init(pid: pid_t, stdoutFD: Int32, stderrFD: Int32, handling: StdoutHandling, killGrace: Duration) {
        self.pid = pid
        self.stdoutFD = stdoutFD
        self.stderrFD = stderrFD
        self.handling = handling
        self.killGrace = killGrace
    }

    var wasTerminated: Bool { state.withLock { $0.terminated } }

    /// Signals the child's process group, unless the child has been reaped already.
    private func signalGroup(_ signal: Int32) {
        state.withLock { s in
            guard !s.reaped else { return }
            _ = kill(-pid, signal)
        }
    }

    /// SIGTERM to the group now, SIGKILL after the grace if it is still there.
    func terminate() {
        let first = state.withLock { s -> Bool in
            defer { s.terminated = true }
            return !s.terminated
        }
        guard first else { return }
        signalGroup(SIGTERM)
        let grace = killGrace
        let nanos = grace.components.seconds * 1_000_000_000 + grace.components.attoseconds / 1_000_000_000
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanos))) { [self] in
            signalGroup(SIGKILL)
        }
    }

    // MARK: spawning

    static func spawn(
        executable: String, arguments: [String], environment: [String: String],
        handling: StdoutHandling, killGrace: Duration
    ) throws -> RunningChild {
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        guard makePipe(&out) else { throw SpawnFailure.system("pipe", errno) }
        guard makePipe(&err) else {
            let e = errno
            close(out[0]); close(out[1])
            throw SpawnFailure.system("pipe", e)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        closeInheritedDescriptors(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [
            SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM,
            SIGTSTP, SIGTTIN, SIGTTOU, SIGXFSZ, SIGWINCH,
        ] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = [executable] + arguments
        let envp = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let status = withCStrings(argv) { cArgv in
            withCStrings(envp) { cEnvp in
                executable.contains("/")
                    ? posix_spawn(&pid, executable, &actions, &attributes, cArgv, cEnvp)
                    : posix_spawnp(&pid, executable, &actions, &attributes, cArgv, cEnvp)
            }
        }
        close(out[1])
        close(err[1])
        guard status == 0 else {
            close(out[0]); close(err[0])
            switch status {
            case ENOENT, ENOTDIR: throw SpawnFailure.notFound(executable)
            case EACCES, EPERM, ENOEXEC: throw SpawnFailure.notExecutable(executable)
            default: throw SpawnFailure.system("posix_spawn", status)
            }
        }
        return RunningChild(pid: pid, stdoutFD: out[0], stderrFD: err[0], handling: handling, killGrace: killGrace)
    }

    /// A pipe whose ends close on exec (they are dup'ed onto the child's stdout and stderr, which
    /// clears the flag there), so no other child inherits them.
    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    /// Adds "close every descriptor from 3 up" to `actions`: glibc's closefrom action when the C
    /// library has it (2.34+), else one close per descriptor open now.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = closeFromSymbol {
            let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
            if closeFrom(&actions, 3) == 0 { return }
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for name in names {
            guard let fd = Int32(name), fd > 2 else { continue }
            // Descriptors with FD_CLOEXEC (our pipes among them) close at exec anyway.
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 {
                posix_spawn_file_actions_addclose(&actions, fd)
            }
        }
    }

    /// `posix_spawn_file_actions_addclosefrom_np`, looked up once (not exported by Swift's Glibc module).
    nonisolated(unsafe) private static let closeFromSymbol: UnsafeMutableRawPointer? = {
        // Immutable after initialisation; a raw function address.
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
    }()

    // MARK: reading

    /// Reads both pipes on a thread of its own until the child has exited, then reaps it and
    /// resumes `continuation` with the result.
    func monitor(_ continuation: CheckedContinuation<ProcessResult, Never>) {
        let thread = Thread { [self] in
            continuation.resume(returning: readUntilExit())
        }
        thread.name = "child.\(pid)"
        thread.stackSize = 256 << 10
        thread.start()
    }

    private func readUntilExit() -> ProcessResult {
        var collected: [UInt8] = []
        var truncated = false
        var lineBuffer: [UInt8] = []
        var stderrBuffer: [UInt8] = []
        var stderrLines: [String] = []
        var outOpen = true
        var errOpen = true
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
        defer {
            chunk.deallocate()
            close(stdoutFD)
            close(stderrFD)
        }

        func keepStderrLine(_ bytes: ArraySlice<UInt8>) {
            var line = String(decoding: bytes.prefix(4096), as: UTF8.self)
            if line.hasSuffix("\r") { line.removeLast() }
            // Progress bars redraw with carriage returns: keep the last state of the line.
            if let cr = line.lastIndex(of: "\r") { line = String(line[line.index(after: cr)...]) }
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return }
            stderrLines.append(line)
            if stderrLines.count > ChildProcess.stderrLineLimit {
                stderrLines.removeFirst(stderrLines.count - ChildProcess.stderrLineLimit)
            }
        }

        func consumeStdout(_ bytes: UnsafeRawBufferPointer) {
            switch handling {
            case .collect(let limit):
                let room = max(limit - collected.count, 0)
                if bytes.count > room { truncated = true }
                collected.append(contentsOf: bytes.prefix(room))
            case .lines(let onLine):
                var start = bytes.startIndex
                while let newline = bytes[start...].firstIndex(of: 0x0A) {
                    if lineBuffer.count < ChildProcess.lineLimit {
                        lineBuffer.append(contentsOf: bytes[start..<newline].prefix(ChildProcess.lineLimit - lineBuffer.count))
                    }
                    if lineBuffer.last == 0x0D { lineBuffer.removeLast() }
                    onLine(String(decoding: lineBuffer, as: UTF8.self))
                    lineBuffer.removeAll(keepingCapacity: true)
                    start = newline + 1
                }
                if lineBuffer.count < ChildProcess.lineLimit {
                    lineBuffer.append(contentsOf: bytes[start...].prefix(ChildProcess.lineLimit - lineBuffer.count))
                }
            }
        }

        func consumeStderr(_ bytes: UnsafeRawBufferPointer) {
            stderrBuffer.append(contentsOf: bytes)
            while let newline = stderrBuffer.firstIndex(of: 0x0A) {
                keepStderrLine(stderrBuffer[..<newline])
                stderrBuffer.removeSubrange(...newline)
            }
            if stderrBuffer.count > 64 << 10 { stderrBuffer.removeFirst(stderrBuffer.count - (64 << 10)) }
        }

        /// Reads what one descriptor has; false at end of file.
        func drain(_ fd: Int32, into consume: (UnsafeRawBufferPointer) -> Void) -> Bool {
            while true {
                let n = read(fd, chunk.baseAddress, chunk.count)
                if n > 0 {
                    consume(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
                    return true
                }
                if n == 0 { return false }
                if errno == EINTR { continue }
                return errno == EAGAIN
            }
        }

        var exited = false
        while outOpen || errOpen {
            var fds: [pollfd] = []
            if outOpen { fds.append(pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)) }
            if errOpen { fds.append(pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), 500)
            if ready < 0 && errno != EINTR { break }
            for p in fds where p.revents != 0 {
                if p.fd == stdoutFD {
                    outOpen = drain(stdoutFD, into: consumeStdout)
                } else {
                    errOpen = drain(stderrFD, into: consumeStderr)
                }
            }
            if ready == 0 && childHasExited() {
                // The child is gone but something it started still holds a pipe: stop waiting for it.
                exited = true
                break
            }
        }
        if !lineBuffer.isEmpty, case .lines(let onLine) = handling {
            onLine(String(decoding: lineBuffer, as: UTF8.self))
        }
        if !stderrBuffer.isEmpty { keepStderrLine(stderrBuffer[...]) }

        // Wait for the exit without reaping, kill what is left of the group (the zombie keeps the
        // group id ours), then reap.
        var info = siginfo_t()
        if !exited {
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        }
        _ = kill(-pid, SIGKILL)
        var status: Int32 = 0
        state.withLock { s in
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            s.reaped = true
        }
        let termination: ProcessTermination
        if status & 0x7f == 0 {
            termination = .exited((status >> 8) & 0xff)
        } else {
            termination = .signalled(status & 0x7f)
        }
        return ProcessResult(termination: termination, stdout: collected, stderrLines: stderrLines, stdoutTruncated: truncated)
    }

    private func childHasExited() -> Bool {
        var info = siginfo_t()
        let r = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
        return r == 0 && info.si_pid() == pid
    }
}

private extension siginfo_t {
    /// The pid field of a SIGCHLD siginfo (zero when waitid found nothing).
    func si_pid() -> pid_t {
        #if canImport(Glibc)
            return _sifields._sigchld.si_pid
        #else
            return self.si_pid
        #endif
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for p in pointers { free(p) } }
    return body(pointers)
}
