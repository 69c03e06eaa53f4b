import ArgumentParser
import Foundation
import JSON
import RedisClient
import Synchronization
import WorkerConfig
import WorkerCore

/// `ctl top`: a live view of the whole cluster, read from Redis (queue streams, heartbeats
/// `P:worker:*`, job hashes), drawn with plain ANSI escapes so it works over SSH in any terminal.
struct CtlTop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "top",
        abstract: "A live view of queues and running jobs across every daemon (q or Ctrl-C quits).")
    @OptionGroup var options: ConfigOption
    @Option(help: "Seconds between refreshes.") var interval: Double = 1
    @Flag(help: "Print one frame without escapes and exit (for scripts and logs).") var once = false
    @Flag(help: "No colours (also when NO_COLOR is set).") var noColor = false

    func run() async throws {
        let (cfg, _) = options.load()
        let redis = RedisConnection(configuration: try RedisConfiguration(url: cfg.redis.url), name: "medianest-ctl-top")
        defer { redis.close() }
        let source = TopSource(redis: redis, keys: RedisKeys(prefix: cfg.redis.prefix), queues: cfg.queues.map(\.name))
        let interactive = !once && isatty(1) == 1
        let color = interactive && !noColor && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
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
        var previous: TopSnapshot?
        var lastError: String?
        while !terminal.quit {
            var lines: [String]
            do {
                var snapshot = try await source.read()
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

    private func sample(_ source: TopSource) async throws -> TopSnapshot {
        do {
            return try await source.read()
        } catch {
            FileHandle.standardError.write(Data("medianest-worker ctl top: cannot read Redis: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

/// One look at the cluster.
struct TopSnapshot {
    struct Queue {
        var name: String
        var depth: Int?
        var pending: Int
        var active = 0
        var slots = 0
        var paused: Bool
        var entriesRead: Int?
        var startsPerMinute: Double?
    }
    struct Daemon {
        var consumer: String
        var host: String
        var pid: String
        var active: String
        var draining: Bool
        var seenAgo: Double?
    }
    struct Job {
        var id: String
        var queue: String
        var type: String
        var holder: String
        var stage: String?
        var progress: Double?
        var downloaded: Double?
        var total: Double?
        var speed: Double?
        var eta: Double?
        var attempt: String
        var startedAt: Int64?
    }
    var at = Date()
    var queues: [Queue] = []
    var daemons: [Daemon] = []
    var jobs: [Job] = []

    /// Start rates from the group's `entries-read` counter between two looks.
    mutating func rates(from previous: TopSnapshot?) {
        guard let previous else { return }
        let seconds = at.timeIntervalSince(previous.at)
        guard seconds > 0.05 else { return }
        for i in queues.indices {
            guard let now = queues[i].entriesRead,
                  let before = previous.queues.first(where: { $0.name == queues[i].name })?.entriesRead else { continue }
            queues[i].startsPerMinute = Double(max(now - before, 0)) / seconds * 60
        }
    }
}

/// Reads a `TopSnapshot` from Redis in three pipelined round trips.
struct TopSource {
    let redis: RedisConnection
    let keys: RedisKeys
    let queues: [String]
    /// Running jobs looked up per queue, at most.
    let jobsPerQueue = 200

    func read() async throws -> TopSnapshot {
        var snapshot = TopSnapshot()
        var first: [RedisCommand] = [RedisCommand(["SMEMBERS", keys.paused]), RedisCommand(["ZRANGE", keys.workers, "0", "-1"])]
        for q in queues {
            first.append(RedisCommand(["XINFO", "GROUPS", keys.queue(q)]))
            first.append(RedisCommand(["XPENDING", keys.queue(q), RedisKeys.group, "-", "+", String(jobsPerQueue)]))
        }
        let r1 = try await redis.pipeline(first)
        let paused = Set((r1[0].array ?? []).compactMap(\.string))
        let consumers = (r1[1].array ?? []).compactMap(\.string)

        var second: [RedisCommand] = consumers.map { RedisCommand(["HGETALL", keys.worker($0)]) }
        var pendingEntries: [(queue: String, entry: String, holder: String)] = []
        for (i, q) in queues.enumerated() {
            var queue = TopSnapshot.Queue(name: q, depth: nil, pending: 0, paused: paused.contains(q))
            for group in r1[2 + 2 * i].array ?? [] {
                let info = Self.pairs(group)
                guard info["name"]?.string == RedisKeys.group else { continue }
                queue.depth = info["lag"]?.int.map { Int($0) }
                queue.pending = Int(info["pending"]?.int ?? 0)
                queue.entriesRead = info["entries-read"]?.int.map { Int($0) }
            }
            for item in r1[3 + 2 * i].array ?? [] {
                guard let parts = item.array, parts.count >= 2, let id = parts[0].string, let holder = parts[1].string else { continue }
                pendingEntries.append((q, id, holder))
            }
            snapshot.queues.append(queue)
        }
        second += pendingEntries.map { RedisCommand(["XRANGE", keys.queue($0.queue), $0.entry, $0.entry]) }
        let r2 = second.isEmpty ? [] : try await redis.pipeline(second)

        let now = Date()
        for (i, consumer) in consumers.enumerated() {
            let h = Self.hash(r2[i])
            guard !h.isEmpty else { continue }   // no heartbeat for 30 s: gone
            let seen = h["seenAt"].flatMap(Timestamp.parse).map { now.timeIntervalSince1970 - Double($0) / 1000 }
            snapshot.daemons.append(TopSnapshot.Daemon(consumer: consumer, host: h["host"] ?? "?", pid: h["pid"] ?? "?",
                                                       active: h["active"] ?? "0", draining: h["draining"] == "1", seenAgo: seen))
            for part in (h["queues"] ?? "").split(separator: ",") {
                // name:active/concurrency
                let fields = part.split(separator: ":")
                guard fields.count == 2, let index = snapshot.queues.firstIndex(where: { $0.name == fields[0] }) else { continue }
                let counts = fields[1].split(separator: "/")
                if counts.count == 2 {
                    snapshot.queues[index].active += Int(counts[0]) ?? 0
                    snapshot.queues[index].slots += Int(counts[1]) ?? 0
                }
            }
        }

        var jobIDs: [(id: String, queue: String, holder: String)] = []
        for (k, pending) in pendingEntries.enumerated() {
            let reply = r2[consumers.count + k]
            guard let entry = reply.array?.first?.array, entry.count == 2, let flat = entry[1].array else { continue }
            var i = 0
            while i + 1 < flat.count {
                if flat[i].string == "job", let bytes = flat[i + 1].bytes, let id = JSONValue.parse(bytes: bytes)?["id"]?.stringValue {
                    jobIDs.append((id, pending.queue, pending.holder))
                }
                i += 2
            }
        }
        if !jobIDs.isEmpty {
            let r3 = try await redis.pipeline(jobIDs.map { RedisCommand(["HGETALL", keys.job($0.id)]) })
            for (job, reply) in zip(jobIDs, r3) {
                let h = Self.hash(reply)
                guard h["state"] == "active" else { continue }
                snapshot.jobs.append(TopSnapshot.Job(
                    id: job.id, queue: job.queue, type: h["type"] ?? "?", holder: h["worker"] ?? job.holder,
                    stage: h["stage"], progress: h["progress"].flatMap(Double.init),
                    downloaded: h["downloadedBytes"].flatMap(Double.init), total: h["totalBytes"].flatMap(Double.init),
                    speed: h["speed"].flatMap(Double.init), eta: h["eta"].flatMap(Double.init),
                    attempt: "\(h["attempt"] ?? "?")/\(h["maxAttempts"] ?? "?")", startedAt: h["startedAt"].flatMap(Timestamp.parse)))
            }
        }
        snapshot.jobs.sort { ($0.startedAt ?? 0) < ($1.startedAt ?? 0) }
        snapshot.daemons.sort { $0.consumer < $1.consumer }
        return snapshot
    }

    static func pairs(_ value: RedisValue) -> [String: RedisValue] {
        let flat = value.array ?? []
        var out: [String: RedisValue] = [:]
        var i = 0
        while i + 1 < flat.count {
            out[flat[i].string ?? ""] = flat[i + 1]
            i += 2
        }
        return out
    }

    static func hash(_ value: RedisValue) -> [String: String] {
        pairs(value).compactMapValues(\.string)
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

    func render(_ s: TopSnapshot, size: TerminalSize) -> [String] {
        var lines: [String] = []
        let clock = DateFormatter()
        clock.dateFormat = "HH:mm:ss"
        let quit = color ? "   (q quits)" : ""
        lines.append(bold("medianest-worker top") + " — prefix \(prefix) — \(clock.string(from: s.at)) — \(s.daemons.count) daemon(s), \(s.jobs.count) job(s) running" + quit)
        lines.append("")
        let queueRows = s.queues.map { q -> [String] in
            [q.name, q.depth.map(String.init) ?? "–", String(q.pending), "\(q.active)/\(q.slots)",
             q.paused ? "PAUSED" : "no", q.startsPerMinute.map { String(format: "%.1f", $0) } ?? "–"]
        }
        var table = CtlFormat.table(["QUEUE", "DEPTH", "TAKEN", "ACTIVE", "PAUSED", "STARTS/MIN"], queueRows, right: [1, 2, 3, 5])
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if !table.isEmpty { table[0] = bold(table[0]) }
        lines += table.map { $0.contains("PAUSED") && !$0.hasPrefix("QUEUE") && $0 != table[0] ? paint($0, "33") : $0 }
        lines.append("")

        let daemonRows = s.daemons.map { d -> [String] in
            [d.consumer, d.host, d.pid, d.active, d.draining ? "draining" : "running",
             d.seenAgo.map { CtlFormat.duration(max($0, 0)) + " ago" } ?? "–"]
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
            return [CtlFormat.clip(j.id, 36), j.queue, j.type, j.attempt, j.stage ?? "–",
                    CtlFormat.bar(j.progress, width: barWidth) + " " + pct, bytes,
                    j.speed.map { CtlFormat.bytes($0) + "/s" } ?? "", j.eta.map(CtlFormat.duration) ?? "",
                    j.startedAt.map { CtlFormat.duration(max(now - Double($0) / 1000, 0)) } ?? "", CtlFormat.clip(j.holder, 28)]
        }
        var jobs = CtlFormat.table(["JOB", "QUEUE", "TYPE", "TRY", "STAGE", "PROGRESS", "BYTES", "SPEED", "ETA", "RUNNING", "DAEMON"],
                                   jobRows, right: [3, 6, 7, 8, 9], maxWidth: 80)
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
