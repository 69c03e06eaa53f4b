import ArgumentParser
import Foundation
import JSON
import WorkerConfig
import WorkerCore

/// `medianest-worker ctl <cmd>`: the command-line face of the control socket (contract section 8).
struct Ctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to a running daemon through its control socket.",
        discussion: """
            Each command sends one request to the daemon's control socket and prints the answer as a \
            table, or as the daemon's JSON with --json. The socket is control.socket from the \
            configuration (--config, $MEDIANEST_CONFIG), or --socket PATH.

            Exit status: 0 done, 1 refused by the daemon, 2 the daemon could not be reached.

            `ctl top` reads the cluster's Redis instead and shows every daemon.
            """,
        subcommands: [
            CtlStatus.self, CtlJobs.self, CtlPause.self, CtlResume.self, CtlDrain.self, CtlUndrain.self,
            CtlCancel.self, CtlRetry.self, CtlReload.self, CtlSub.self, CtlTop.self,
        ])
}

/// Options every socket command takes.
struct CtlOptions: ParsableArguments {
    @OptionGroup var configuration: ConfigOption
    @Option(help: "The control socket (default: control.socket of the configuration, /run/medianest-worker/control.sock).")
    var socket: String?
    @Flag(help: "Print the daemon's JSON answer as it is, for scripts.")
    var json = false
    @Option(help: "Seconds to wait for the answer.")
    var timeout: Double = 15

    func socketPath() -> String {
        if let socket { return socket }
        return configuration.load().0.control.socket
    }

    /// Sends the request and prints the answer. Exits 1 when the daemon refused it, 2 when it could not be reached.
    func send(_ request: [(String, JSONValue)], format: (JSONValue) -> String) throws {
        let client = CtlClient(path: socketPath(), timeout: max(timeout, 0.1))
        let line: String
        do {
            line = try client.send(JSONValue.object(request).encoded)
        } catch {
            FileHandle.standardError.write(Data("medianest-worker ctl: \(error)\n".utf8))
            throw ExitCode(2)
        }
        guard let answer = JSONValue.parse(line), answer.isObject else {
            FileHandle.standardError.write(
                Data("medianest-worker ctl: the daemon answered something that is not a JSON object: \(line.prefix(200))\n".utf8))
            throw ExitCode(2)
        }
        let ok = answer["ok"]?.boolValue == true
        if json {
            print(line)
        } else if ok {
            print(format(answer))
        } else {
            FileHandle.standardError.write(
                Data("medianest-worker ctl: \(answer["error"]?.stringValue ?? "the daemon refused the request")\n".utf8))
        }
        if !ok { throw ExitCode(1) }
    }
}

struct CtlStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "The daemon's state: queues, pause and drain, Redis and PostgreSQL, leader and schedules.")
    @OptionGroup var options: CtlOptions
    func run() throws { try options.send([("cmd", .string("status"))], format: CtlText.status) }
}

struct CtlJobs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jobs", abstract: "The jobs this daemon runs now, with their progress.")
    @OptionGroup var options: CtlOptions
    func run() throws { try options.send([("cmd", .string("jobs"))], format: CtlText.jobs) }
}

struct CtlPause: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Stop every daemon from starting jobs of a queue (running jobs finish); it lasts across restarts.")
    @Argument(help: "The queue.") var queue: String
    @OptionGroup var options: CtlOptions
    func run() throws {
        try options.send([("cmd", .string("pause")), ("queue", .string(queue))]) { _ in
            "queue \(queue) paused on every daemon; running jobs finish (`ctl resume \(queue)` starts it again)"
        }
    }
}

struct CtlResume: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Let every daemon start jobs of a paused queue again.")
    @Argument(help: "The queue.") var queue: String
    @OptionGroup var options: CtlOptions
    func run() throws {
        try options.send([("cmd", .string("resume")), ("queue", .string(queue))]) { _ in "queue \(queue) resumed on every daemon" }
    }
}

struct CtlDrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Stop this daemon from taking jobs (others go on; running jobs finish).")
    @OptionGroup var options: CtlOptions
    func run() throws {
        try options.send([("cmd", .string("drain"))]) { _ in
            "this daemon takes no new jobs; running ones finish (`ctl undrain` takes jobs again)"
        }
    }
}

struct CtlUndrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "undrain", abstract: "Let this daemon take jobs again.")
    @OptionGroup var options: CtlOptions
    func run() throws { try options.send([("cmd", .string("undrain"))]) { _ in "this daemon takes jobs again" } }
}

struct CtlCancel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a queued, scheduled or running job, on whichever daemon holds it.")
    @Argument(help: "The job id.") var jobId: String
    @OptionGroup var options: CtlOptions
    func run() throws {
        try options.send([("cmd", .string("cancel")), ("jobId", .string(jobId))]) { answer in
            let outcome = answer["outcome"]?.stringValue ?? "cancelled"
            let was = answer["previousState"]?.stringValue ?? "unknown"
            var text =
                outcome == "stopping"
                ? "job \(jobId) is being stopped (it was running)"
                : "job \(jobId) \(outcome) (it was \(was))"
            if let note = answer["note"]?.stringValue { text += "\nnote: \(note)" }
            return text
        }
    }
}

struct CtlRetry: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retry", abstract: "Run a failed or cancelled job again.")
    @Argument(help: "The job id.") var jobId: String
    @OptionGroup var options: CtlOptions
    func run() throws {
        try options.send([("cmd", .string("retry")), ("jobId", .string(jobId))]) { _ in "job \(jobId) queued again" }
    }
}

struct CtlReload: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Re-read jobs.yml, as SIGHUP does; a refused file leaves the running configuration in place.")
    @OptionGroup var options: CtlOptions
    func run() throws {
        try options.send([("cmd", .string("reload"))]) { answer in
            let queues = CtlText.array(answer["queues"]).map { q in "\(CtlFormat.text(q["name"]))=\(CtlFormat.text(q["concurrency"]))" }
            return "jobs.yml reloaded; queues: \(queues.joined(separator: ", "))"
        }
    }
}

/// The tables of the socket commands.
enum CtlText {
    static func array(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let items)? = value { return items }
        return []
    }

    static func status(_ a: JSONValue) -> String {
        var lines: [String] = []
        let state =
            a["shuttingDown"]?.boolValue == true
            ? "shutting down" : (a["draining"]?.boolValue == true ? "draining (takes no new jobs)" : "running")
        let uptime = CtlFormat.number(a["uptimeSeconds"]).map(CtlFormat.duration) ?? "–"
        lines.append(
            "daemon    \(CtlFormat.text(a["consumer"])) on \(CtlFormat.text(a["host"])), pid \(CtlFormat.text(a["pid"])), up \(uptime)")
        lines.append("state     \(state); \(CtlFormat.text(a["active"])) active job(s)")
        let redis = a["redis"]?.boolValue == true ? "ok" : "UNREACHABLE"
        let pg = a["postgres"]?.boolValue == true ? "ok" : "UNREACHABLE"
        lines.append("redis     \(redis)")
        let records = a["records"]
        lines.append(
            "postgres  \(pg) (records waiting: \(CtlFormat.text(a["recordsBacklog"])), oldest "
                + "\(CtlFormat.text(records?["oldestSeconds"])) s, set aside here: \(CtlFormat.text(records?["deadLettered"])))")
        if let leader = a["leader"] {
            let mine = a["isLeader"]?.boolValue == true ? " (this daemon)" : ""
            lines.append("leader    \(leader == .null ? "none" : CtlFormat.text(leader))\(mine)")
        }
        if case .object(let circuits)? = a["circuits"], !circuits.isEmpty {
            lines.append("circuits  " + circuits.map { "\($0.0) \(CtlFormat.text($0.1))" }.joined(separator: ", "))
        }
        if let ytdlp = a["ytDlp"], ytdlp != .null {
            var line =
                "yt-dlp    \(CtlFormat.text(ytdlp["version"])) (\(CtlFormat.text(ytdlp["channel"])), "
                + "\(CtlFormat.text(ytdlp["ageDays"])) days old), JS runtime "
                + CtlFormat.text(ytdlp["jsRuntime"])
            if let warning = ytdlp["warning"]?.stringValue { line += "; WARNING: " + warning }
            lines.append(line)
        }
        lines.append("")
        let queues = array(a["queues"]).map { q in
            [
                CtlFormat.text(q["name"]), CtlFormat.text(q["active"]) + "/" + CtlFormat.text(q["concurrency"]),
                CtlFormat.text(q["depth"]), q["paused"]?.boolValue == true ? "PAUSED" : "no",
            ]
        }
        lines.append(CtlFormat.table(["QUEUE", "ACTIVE", "DEPTH", "PAUSED"], queues, right: [1, 2]))
        let bullmq = array(a["bullmq"])
        if !bullmq.isEmpty {
            lines.append("")
            lines.append(
                CtlFormat.table(
                    ["BULLMQ QUEUE", "INTO", "WAITING", "DELAYED", "ACTIVE", "OURS", "COMPLETED", "FAILED", "PAUSED"],
                    bullmq.map { b in
                        [
                            CtlFormat.text(b["name"]), CtlFormat.text(b["queue"]), CtlFormat.text(b["waiting"]), CtlFormat.text(b["delayed"]),
                            CtlFormat.text(b["active"]), CtlFormat.text(b["held"]), CtlFormat.text(b["completed"]),
                            CtlFormat.text(b["failed"]), b["paused"]?.boolValue == true ? "PAUSED" : "no",
                        ]
                    }, right: [2, 3, 4, 5, 6, 7]))
        }
        let schedules = array(a["schedules"])
        if !schedules.isEmpty {
            lines.append("")
            lines.append(
                CtlFormat.table(
                    ["SCHEDULE", "WHEN", "JOB", "LAST RUN", "NEXT RUN"],
                    schedules.map { s in
                        [
                            CtlFormat.text(s["name"]), CtlFormat.text(s["spec"]),
                            "\(CtlFormat.text(s["type"])) on \(CtlFormat.text(s["queue"]))",
                            CtlFormat.when(s["lastRun"]?.stringValue), CtlFormat.when(s["nextRun"]?.stringValue),
                        ]
                    }))
        }
        return lines.joined(separator: "\n")
    }

    static func jobs(_ a: JSONValue) -> String {
        let jobs = array(a["jobs"])
        guard !jobs.isEmpty else { return "no jobs running on \(CtlFormat.text(a["consumer"]))" }
        let rows = jobs.map { j -> [String] in
            let progress = CtlFormat.number(j["progress"])
            let speed = CtlFormat.number(j["speed"]).map { CtlFormat.bytes($0) + "/s" } ?? ""
            let eta = CtlFormat.number(j["eta"]).map(CtlFormat.duration) ?? ""
            var stage = CtlFormat.text(j["stage"])
            if let stopping = j["stopping"]?.stringValue { stage += " (stopping: \(stopping))" }
            return [
                CtlFormat.text(j["jobId"]), CtlFormat.text(j["queue"]), CtlFormat.text(j["type"]),
                "\(CtlFormat.text(j["attempt"]))/\(CtlFormat.text(j["maxAttempts"]))", stage,
                CtlFormat.bar(progress, width: 20) + (progress.map { String(format: " %5.1f%%", $0) } ?? "      –"),
                speed, eta, CtlFormat.number(j["runningSeconds"]).map(CtlFormat.duration) ?? "",
            ]
        }
        return CtlFormat.table(
            ["JOB", "QUEUE", "TYPE", "TRY", "STAGE", "PROGRESS", "SPEED", "ETA", "RUNNING"], rows,
            right: [3, 6, 7, 8])
    }
}
