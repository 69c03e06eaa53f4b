import Foundation
import Synchronization

/// The daemon's metrics, kept in memory and rendered in Prometheus text format 0.0.4.
package final class Metrics: Sendable {
    /// Histogram buckets in seconds: from millisecond no-ops to hour-long downloads.
    package static let durationBuckets: [Double] = [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 10800]

    struct Histogram {
        var counts: [Int]
        var sum: Double = 0
        var count: Int = 0
    }

    struct State {
        var jobsTotal: [[String]: Int] = [:]  // queue, type, outcome
        var durations: [[String]: Histogram] = [:]  // queue, type
        var externalRequests: [[String]: Int] = [:]  // service, outcome
        var downloadBytes: Int64 = 0
        var redisErrors: Int = 0
        var recordsWritten: Int = 0
        var recordsDeadLettered: Int = 0
    }

    private let state = Mutex(State())

    package init() {}

    /// Counts a job attempt's outcome: completed, failed, retried or cancelled.
    package func jobFinished(queue: String, type: String, outcome: String, seconds: Double?) {
        state.withLock { s in
            s.jobsTotal[[queue, type, outcome], default: 0] += 1
            if let seconds {
                var h = s.durations[[queue, type]] ?? Histogram(counts: Array(repeating: 0, count: Self.durationBuckets.count))
                for (i, bound) in Self.durationBuckets.enumerated() where seconds <= bound { h.counts[i] += 1 }
                h.sum += seconds
                h.count += 1
                s.durations[[queue, type]] = h
            }
        }
    }

    /// Counts records this daemon wrote into PostgreSQL.
    package func recordsWritten(_ n: Int) { state.withLock { $0.recordsWritten += n } }

    /// Counts a record PostgreSQL refused even escaped (kept in `P:records:dead`).
    package func recordDeadLettered() { state.withLock { $0.recordsDeadLettered += 1 } }

    package func downloaded(bytes: Int64) { state.withLock { $0.downloadBytes += bytes } }

    package func externalRequest(service: String, outcome: String) {
        state.withLock { $0.externalRequests[[service, outcome], default: 0] += 1 }
    }

    /// Live values sampled at scrape time.
    package struct Gauges: Sendable {
        package var queueDepth: [String: Int] = [:]
        package var jobsActive: [String: Int] = [:]
        package var queuePaused: [String: Bool] = [:]
        package var circuitOpen: [String: Bool] = [:]
        /// Records waiting in the outbox `P:records` (the cluster's) and the age of the oldest, in seconds.
        package var recordsPending: Int = 0
        package var recordsOldestSeconds: Double = 0
        /// Outcomes waiting for their observers in `P:outcomes`.
        package var outcomesPending: Int = 0
        /// yt-dlp as last checked: version, channel, JS runtime name, age in days.
        package var ytDlp: (version: String, channel: String, jsRuntime: String, ageDays: Int?)?
        package init() {}
    }

    /// The exposition text.
    package func render(gauges: Gauges) -> String {
        let s = state.withLock { $0 }
        var out = ""
        func labels(_ pairs: [(String, String)]) -> String {
            "{" + pairs.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        out += "# HELP medianest_jobs_total Job attempts finished, by outcome (completed, failed, retried, cancelled).\n"
        out += "# TYPE medianest_jobs_total counter\n"
        for (key, value) in s.jobsTotal.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            out += "medianest_jobs_total\(labels([("queue", key[0]), ("type", key[1]), ("outcome", key[2])])) \(value)\n"
        }
        out += "# HELP medianest_job_duration_seconds Time an attempt ran, from start to its end.\n"
        out += "# TYPE medianest_job_duration_seconds histogram\n"
        for (key, h) in s.durations.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let base = [("queue", key[0]), ("type", key[1])]
            for (i, bound) in Self.durationBuckets.enumerated() {
                out += "medianest_job_duration_seconds_bucket\(labels(base + [("le", format(bound))])) \(h.counts[i])\n"
            }
            out += "medianest_job_duration_seconds_bucket\(labels(base + [("le", "+Inf")])) \(h.count)\n"
            out += "medianest_job_duration_seconds_sum\(labels(base)) \(format(h.sum))\n"
            out += "medianest_job_duration_seconds_count\(labels(base)) \(h.count)\n"
        }
        func gauge(_ name: String, _ help: String, _ label: String, _ values: [String: Double]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for (k, v) in values.sorted(by: { $0.key < $1.key }) { out += "\(name)\(labels([(label, k)])) \(format(v))\n" }
        }
        gauge(
            "medianest_queue_depth", "Jobs waiting in the queue stream, not yet taken by any daemon.", "queue",
            gauges.queueDepth.mapValues(Double.init))
        gauge("medianest_jobs_active", "Jobs this daemon is running now.", "queue", gauges.jobsActive.mapValues(Double.init))
        gauge("medianest_queue_paused", "1 while the queue is paused.", "queue", gauges.queuePaused.mapValues { $0 ? 1 : 0 })
        gauge(
            "medianest_circuit_open", "1 while calls to the service are held back by its circuit breaker.", "service",
            gauges.circuitOpen.mapValues { $0 ? 1 : 0 })
        func single(_ name: String, _ type: String, _ help: String, _ value: Double) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(format(value))\n"
        }
        if let y = gauges.ytDlp {
            out += "# HELP medianest_ytdlp_info yt-dlp as last checked (start-up or service.health): version, channel and JS runtime.\n"
            out += "# TYPE medianest_ytdlp_info gauge\n"
            out += "medianest_ytdlp_info\(labels([("version", y.version), ("channel", y.channel), ("js_runtime", y.jsRuntime)])) 1\n"
            if let age = y.ageDays {
                single(
                    "medianest_ytdlp_age_seconds", "gauge", "Time since the release of the yt-dlp found (a warning past 90 days).",
                    Double(age) * 86400)
            }
        }
        single(
            "medianest_records_pending", "gauge", "Job records waiting in the outbox for PostgreSQL, cluster-wide.",
            Double(gauges.recordsPending))
        single(
            "medianest_records_oldest_seconds", "gauge", "Age of the oldest job record waiting in the outbox.", gauges.recordsOldestSeconds)
        single(
            "medianest_outcomes_pending", "gauge", "Job outcomes waiting for their observers, cluster-wide.", Double(gauges.outcomesPending)
        )
        single("medianest_records_written_total", "counter", "Records this daemon wrote into PostgreSQL.", Double(s.recordsWritten))
        single(
            "medianest_records_dead_total", "counter", "Records PostgreSQL refused even escaped, kept in P:records:dead.",
            Double(s.recordsDeadLettered))
        out += "# HELP medianest_download_bytes_total Bytes of media downloaded.\n# TYPE medianest_download_bytes_total counter\n"
        out += "medianest_download_bytes_total \(s.downloadBytes)\n"
        out +=
            "# HELP medianest_external_requests_total Requests to outside services, by outcome.\n# TYPE medianest_external_requests_total counter\n"
        for (key, value) in s.externalRequests.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            out += "medianest_external_requests_total\(labels([("service", key[0]), ("outcome", key[1])])) \(value)\n"
        }
        out += ProcessMetrics.render()
        return out
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(
            of: "\n", with: "\\n")
    }

    private func format(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    }
}

/// The standard `process_*` metrics, read from /proc.
enum ProcessMetrics {
    static let startTime: Double = {
        // Field 22 of /proc/self/stat is the start time in clock ticks after boot.
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return Date().timeIntervalSince1970 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard fields.count > 19, let start = Double(fields[19]),
            let uptime = (try? String(contentsOfFile: "/proc/uptime", encoding: .utf8))?.split(separator: " ").first.flatMap({ Double($0) })
        else { return Date().timeIntervalSince1970 }
        return Date().timeIntervalSince1970 - uptime + start / ticks
    }()

    static func render() -> String {
        var out = ""
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") {
            let f = stat[stat.index(after: close)...].split(separator: " ")
            if f.count > 22, let utime = Double(f[11]), let stime = Double(f[12]), let vsize = Double(f[20]), let rss = Double(f[21]) {
                out +=
                    "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\n"
                out += "process_cpu_seconds_total \((utime + stime) / ticks)\n"
                out += "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n# TYPE process_virtual_memory_bytes gauge\n"
                out += "process_virtual_memory_bytes \(Int64(vsize))\n"
                out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n"
                out += "process_resident_memory_bytes \(Int64(rss) * Int64(sysconf(Int32(_SC_PAGESIZE))))\n"
            }
        }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        out += "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds \(fds)\n"
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            out +=
                "# HELP process_max_fds Maximum number of open file descriptors.\n# TYPE process_max_fds gauge\nprocess_max_fds \(limit.rlim_cur)\n"
        }
        out +=
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
        out += "process_start_time_seconds \(startTime)\n"
        return out
    }
}
