import Foundation
import Synchronization
import Testing

@testable import YtDlp

@Suite("child processes")
struct ChildProcessTests {
    let env = ["PATH": "/usr/bin:/bin"]

    @Test func exitStatusStdoutAndStderr() async throws {
        let r = try await ChildProcess.run(
            executable: "/bin/sh", arguments: ["-c", "printf 'a\\nb'; echo oops >&2; echo last >&2; exit 3"],
            environment: env, stdout: .collect(limit: 1 << 20))
        #expect(r.termination == .exited(3))
        #expect(String(decoding: r.stdout, as: UTF8.self) == "a\nb")
        #expect(r.stderrLines == ["oops", "last"])
    }

    @Test func aRunPastItsTimeoutIsStoppedAndGivesNothing() async throws {
        let start = ContinuousClock.now
        let slow = try await ChildProcess.run(
            executable: "/bin/sh", arguments: ["-c", "sleep 30"], environment: env, stdout: .collect(limit: 1024),
            timeout: .milliseconds(300))
        #expect(slow == nil)
        #expect(ContinuousClock.now - start < .seconds(5), "the child was stopped, not waited for")
        let quick = try await ChildProcess.run(
            executable: "/bin/sh", arguments: ["-c", "echo hi"], environment: env, stdout: .collect(limit: 1024), timeout: .seconds(10))
        #expect(quick?.termination == .exited(0) && quick.map { String(decoding: $0.stdout, as: UTF8.self) } == "hi\n")
    }

    @Test func linesArriveOneByOne() async throws {
        let seen = Mutex<[String]>([])
        let r = try await ChildProcess.run(
            executable: "sh", arguments: ["-c", "echo one; echo 'two words'; printf three"],
            environment: env, stdout: .lines({ line in seen.withLock { $0.append(line) } }))
        #expect(r.termination == .exited(0))
        #expect(seen.withLock { $0 } == ["one", "two words", "three"])
    }

    @Test func argumentsAreNeverShellText() async throws {
        let r = try await ChildProcess.run(
            executable: "/bin/echo", arguments: ["$(touch /tmp/never)", "; rm -rf /", "`id`"],
            environment: env, stdout: .collect(limit: 4096))
        #expect(String(decoding: r.stdout, as: UTF8.self) == "$(touch /tmp/never) ; rm -rf / `id`\n")
    }

    @Test func aMissingExecutable() async {
        await #expect(throws: SpawnFailure.notFound("/nonexistent/yt-dlp")) {
            _ = try await ChildProcess.run(executable: "/nonexistent/yt-dlp", arguments: [], environment: env, stdout: .collect(limit: 1))
        }
        await #expect(throws: SpawnFailure.notFound("no-such-program-here")) {
            _ = try await ChildProcess.run(executable: "no-such-program-here", arguments: [], environment: env, stdout: .collect(limit: 1))
        }
    }

    @Test func theChildLeadsItsOwnProcessGroupWithDefaultSignals() async throws {
        // Even if this process ignores SIGTERM, the child gets the default action back.
        let previous = signal(SIGTERM, SIG_IGN)
        defer { signal(SIGTERM, previous) }
        let r = try await ChildProcess.run(
            executable: "/bin/sh", arguments: ["-c", "cut -d' ' -f5 /proc/$$/stat; echo $$; kill -TERM $$; sleep 5; echo survived"],
            environment: env, stdout: .collect(limit: 4096))
        let lines = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2 && lines[0] == lines[1], "process group id == pid")
        #expect(r.termination == .signalled(SIGTERM))
    }

    @Test func noDescriptorIsInherited() async throws {
        let fd = open("/dev/null", O_RDONLY)  // without O_CLOEXEC
        defer { close(fd) }
        let r = try await ChildProcess.run(
            executable: "/bin/sh", arguments: ["-c", "test -e /proc/$$/fd/\(fd) && echo leaked || echo clean"],
            environment: env, stdout: .collect(limit: 4096))
        #expect(String(decoding: r.stdout, as: UTF8.self) == "clean\n")
    }

    @Test func cancellingStopsTheWholeGroupQuickly() async throws {
        let pidFile = NSTemporaryDirectory() + "/childprocess-\(UUID().uuidString).pid"
        defer { unlink(pidFile) }
        let started = ContinuousClock.now
        let task = Task {
            try await ChildProcess.run(
                executable: "/bin/sh", arguments: ["-c", "sleep 60 & echo $! > \(pidFile); wait"],
                environment: env, stdout: .collect(limit: 4096), killGrace: .seconds(1))
        }
        var grandchild: pid_t = 0
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                grandchild = pid
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(grandchild > 0)
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        #expect(ContinuousClock.now - started < .seconds(5))
        var gone = false
        for _ in 0..<100 where !gone {
            gone = !isRunning(grandchild)
            if !gone { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(gone, "the grandchild is gone too")
    }

    @Test func aChildThatIgnoresSIGTERMIsKilledAfterTheGrace() async throws {
        let started = ContinuousClock.now
        let task = Task {
            try await ChildProcess.run(
                executable: "/bin/sh", arguments: ["-c", "trap '' TERM; echo ready; sleep 30; sleep 30"],
                environment: env, stdout: .collect(limit: 4096), killGrace: .milliseconds(300))
        }
        try await Task.sleep(for: .milliseconds(300))
        let cancelled = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        #expect(ContinuousClock.now - cancelled < .seconds(2))
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}

/// Whether `pid` is a live process (not gone, not a zombie waiting for its new parent to reap it).
func isRunning(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state != "Z" && state != "X"
}
