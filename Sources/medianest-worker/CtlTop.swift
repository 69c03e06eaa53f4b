import ArgumentParser
import Foundation
import Synchronization
import WorkerCore
import WorkerDaemon

/// `ctl top`: a live view of the whole cluster (``ClusterOverview``, read from Redis by the core),
/// drawn with plain ANSI escapes so it works over SSH in any terminal.
struct CtlTop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "A live view of queues and running jobs across every daemon (q or Ctrl-C quits).")
    @OptionGroup var options: ConfigOption
    @Option(help: "Seconds between refreshes.") var interval: Double = 1
    @Flag(help: "Print one frame without escapes and exit (for scripts and logs).") var once = false
    @Flag(help: "No colours (also when NO_COLOR is set).") var noColor = false

    func run() async throws {
        let (cfg, _) = options.load()
        let source = try ClusterClient(configuration: cfg, name: "medianest-ctl-top")
        defer { source.close() }
        let interactive = !once && isatty(1) == 1
        let color =
            interactive && !noColor && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
            && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        let renderer = TopRenderer(color: color, prefix: cfg.redis.prefix)

        if !interactive {
            // Two samples a moment apart, so the start rate has something to go on.
            let previous = try await sample(source)
            try await Task.sleep(for: .milliseconds(Int64(max(min(interval, 2), 0.2) * 1000)))
            var current = try await sample(source)
            current.rates(from: previous)
            print(renderer.render(current, size: TerminalSize(columns: 160, rows: 10_000)).joined(separator: "\n"))
            return
        }

        let terminal = Terminal()
        terminal.enter()
        defer { terminal.leave() }
        var previous: ClusterOverview?
        var lastError: String?
        while !terminal.quit {
            var lines: [String]
            do {
                var snapshot = try await source.overview()
                snapshot.rates(from: previous)
                previous = snapshot
                lastError = nil
                lines = renderer.render(snapshot, size: terminal.size())
            } catch {
                lastError = "\(error)"
                lines = ["medianest-worker top — cannot read Redis: \(lastError ?? "")", "retrying…"]
            }
            terminal.draw(lines)
            let until = ContinuousClock.now + .milliseconds(Int64(max(interval, 0.2) * 1000))
            while ContinuousClock.now < until && !terminal.quit {
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    private func sample(_ source: ClusterClient) async throws -> ClusterOverview {
        do {
            return try await source.overview()
        } catch {
            FileHandle.standardError.write(Data("medianest-worker ctl top: cannot read Redis: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

struct TerminalSize {
    var columns: Int
    var rows: Int
}

/// Draws a snapshot as lines of text.
struct TopRenderer {
    let color: Bool
    let prefix: String

    func bold(_ s: String) -> String { color ? "\u{1B}[1m\(s)\u{1B}[0m" : s }
    func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }

    func render(_ s: ClusterOverview, size: TerminalSize) -> [String] {
        var lines: [String] = []
        let clock = DateFormatter()
        clock.dateFormat = "HH:mm:ss"
        let quit = color ? "   (q quits)" : ""
        lines.append(
            bold("medianest-worker top")
                + " — prefix \(prefix) — \(clock.string(from: s.at)) — \(s.daemons.count) daemon(s), \(s.jobs.count) job(s) running" + quit)
        lines.append("")
        let queueRows = s.queues.map { q -> [String] in
            [
                q.name, q.depth.map(String.init) ?? "–", String(q.pending), "\(q.active)/\(q.slots)",
                q.paused ? "PAUSED" : "no", q.startsPerMinute.map { String(format: "%.1f", $0) } ?? "–",
            ]
        }
        var table = CtlFormat.table(["QUEUE", "DEPTH", "TAKEN", "ACTIVE", "PAUSED", "STARTS/MIN"], queueRows, right: [1, 2, 3, 5])
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if !table.isEmpty { table[0] = bold(table[0]) }
        lines += table.map { $0.contains("PAUSED") && !$0.hasPrefix("QUEUE") && $0 != table[0] ? paint($0, "33") : $0 }
        lines.append("")

        let daemonRows = s.daemons.map { d -> [String] in
            [
                d.consumer, d.host, d.pid, d.active, d.draining ? "draining" : "running",
                d.seenAgo.map { CtlFormat.duration(max($0, 0)) + " ago" } ?? "–",
            ]
        }
        var daemons = CtlFormat.table(["DAEMON", "HOST", "PID", "ACTIVE", "STATE", "HEARTBEAT"], daemonRows, right: [2, 3])
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if s.daemons.isEmpty { daemons.append(paint("no daemon has sent a heartbeat in the last 30 s", "31")) }
        if !daemons.isEmpty { daemons[0] = bold(daemons[0]) }
        lines += daemons
        lines.append("")

        let barWidth = max(min(size.columns - 120, 30), 10)
        let now = s.at.timeIntervalSince1970
        let jobRows = s.jobs.map { j -> [String] in
            let pct = j.progress.map { String(format: "%5.1f%%", $0) } ?? "    – "
            let bytes: String
            if let done = j.downloaded {
                bytes = CtlFormat.bytes(done) + (j.total.map { " / " + CtlFormat.bytes($0) } ?? "")
            } else {
                bytes = ""
            }
            return [
                CtlFormat.clip(j.id, 36), j.queue, j.type, j.attempt, j.stage ?? "–",
                CtlFormat.bar(j.progress, width: barWidth) + " " + pct, bytes,
                j.speed.map { CtlFormat.bytes($0) + "/s" } ?? "", j.eta.map(CtlFormat.duration) ?? "",
                j.startedAt.map { CtlFormat.duration(max(now - Double($0) / 1000, 0)) } ?? "", CtlFormat.clip(j.holder, 28),
            ]
        }
        var jobs = CtlFormat.table(
            ["JOB", "QUEUE", "TYPE", "TRY", "STAGE", "PROGRESS", "BYTES", "SPEED", "ETA", "RUNNING", "DAEMON"],
            jobRows, right: [3, 6, 7, 8, 9], maxWidth: 80
        )
        .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if !jobs.isEmpty { jobs[0] = bold(jobs[0]) }
        if s.jobs.isEmpty { jobs.append("no jobs running") }
        let room = max(size.rows - lines.count - 1, 2)
        if jobs.count > room {
            let hidden = jobs.count - room + 1
            jobs = Array(jobs.prefix(room - 1)) + ["… \(hidden) more"]
        }
        lines += jobs
        return lines.map { clipVisible($0, size.columns) }
    }

    /// Cuts a line to the terminal width, not counting escape sequences.
    func clipVisible(_ line: String, _ width: Int) -> String {
        var visible = 0
        var out = ""
        var inEscape = false
        for ch in line {
            if ch == "\u{1B}" { inEscape = true }
            if inEscape {
                out.append(ch)
                if ch.isLetter { inEscape = false }
                continue
            }
            if visible >= width { break }
            out.append(ch)
            visible += 1
        }
        return color ? out + "\u{1B}[0m" : out
    }
}

/// Set by SIGINT, SIGTERM and SIGHUP while `top` runs.
private let topSignalled = Atomic<Bool>(false)

/// The terminal while `top` runs: no echo, no line buffering, hidden cursor; q or Ctrl-C sets `quit`.
final class Terminal: Sendable {
    private let quitFlag = Atomic<Bool>(false)
    private let saved = Mutex<termios?>(nil)

    var quit: Bool { quitFlag.load(ordering: .relaxed) || topSignalled.load(ordering: .relaxed) }

    func enter() {
        if isatty(0) == 1 {
            var t = termios()
            if tcgetattr(0, &t) == 0 {
                saved.withLock { $0 = t }
                var raw = t
                raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
                withUnsafeMutableBytes(of: &raw.c_cc) { cc in
                    cc[Int(VMIN)] = 1
                    cc[Int(VTIME)] = 0
                }
                tcsetattr(0, TCSANOW, &raw)
            }
            let reader = Thread { [self] in
                var byte: UInt8 = 0
                while !self.quit {
                    let n = read(0, &byte, 1)
                    if n <= 0 { return }
                    if byte == UInt8(ascii: "q") || byte == UInt8(ascii: "Q") || byte == 3 { self.quitFlag.store(true, ordering: .relaxed) }
                }
            }
            reader.name = "top-keys"
            reader.start()
        }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            // A lock-free atomic store is safe in a signal handler.
            signal(sig) { _ in topSignalled.store(true, ordering: .relaxed) }
        }
        write("\u{1B}[?25l\u{1B}[H\u{1B}[2J")
    }

    func leave() {
        write("\u{1B}[?25h\n")
        if var t = saved.withLock({ $0 }) { tcsetattr(0, TCSANOW, &t) }
    }

    func draw(_ lines: [String]) {
        write("\u{1B}[H" + lines.map { $0 + "\u{1B}[K" }.joined(separator: "\n") + "\u{1B}[J")
    }

    func size() -> TerminalSize {
        var ws = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0, ws.ws_row > 0 {
            return TerminalSize(columns: Int(ws.ws_col), rows: Int(ws.ws_row))
        }
        let env = ProcessInfo.processInfo.environment
        return TerminalSize(columns: env["COLUMNS"].flatMap(Int.init) ?? 120, rows: env["LINES"].flatMap(Int.init) ?? 40)
    }

    private func write(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress! + offset, bytes.count - offset) }
            if n <= 0 { return }
            offset += n
        }
    }
}
