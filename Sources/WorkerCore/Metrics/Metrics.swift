import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// The daemon's metrics: swift-metrics counters, timers and gauges, made by a
/// `PrometheusMetricsFactory` over a registry of this instance's own (two workers in one process,
/// as in the tests, never share one), and exposed by swift-prometheus in text format 0.0.4 with
/// the contract's names, labels and HELP lines (section 9).
package final class Metrics: Sendable {
    /// Histogram buckets in seconds: from millisecond no-ops to hour-long downloads.
    package static let durationBuckets: [Double] = [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 10800]

    /// The families of contract section 9: name, type and HELP text (swift-metrics has no help of
    /// its own), and whether it is exposed even before it has a series, as a scraper expects (the
    /// yt-dlp families appear once yt-dlp has been checked).
    static let families: [(name: String, type: String, help: String, always: Bool)] = [
        ("medianest_jobs_total", "counter", "Job attempts finished, by outcome (completed, failed, retried, cancelled).", true),
        ("medianest_job_duration_seconds", "histogram", "Time an attempt ran, from start to its end.", true),
        ("medianest_queue_depth", "gauge", "Jobs waiting in the queue stream, not yet taken by any daemon.", true),
        ("medianest_jobs_active", "gauge", "Jobs this daemon is running now.", true),
        ("medianest_queue_paused", "gauge", "1 while the queue is paused.", true),
        ("medianest_circuit_open", "gauge", "1 while calls to the service are held back by its circuit breaker.", true),
        ("medianest_ytdlp_info", "gauge", "yt-dlp as last checked (start-up or service.health): version, channel and JS runtime.", false),
        ("medianest_ytdlp_age_seconds", "gauge", "Time since the release of the yt-dlp found (a warning past 90 days).", false),
        ("medianest_records_pending", "gauge", "Job records waiting in the outbox for PostgreSQL, cluster-wide.", true),
        ("medianest_records_oldest_seconds", "gauge", "Age of the oldest job record waiting in the outbox.", true),
        ("medianest_outcomes_pending", "gauge", "Job outcomes waiting for their observers, cluster-wide.", true),
        ("medianest_records_written_total", "counter", "Records this daemon wrote into PostgreSQL.", true),
        ("medianest_records_dead_total", "counter", "Records PostgreSQL refused even escaped, kept in P:records:dead.", true),
        ("medianest_download_bytes_total", "counter", "Bytes of media downloaded.", true),
        ("medianest_external_requests_total", "counter", "Requests to outside services, by outcome.", true),
    ]
    static let help: [String: String] = Dictionary(uniqueKeysWithValues: families.map { ($0.name, $0.help) })

    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory

    /// Handles by label values, made on first use (a registry look-up once, then an atomic add).
    struct Handles {
        var jobs: [[String]: CoreMetrics.Counter] = [:]
        var durations: [[String]: CoreMetrics.Timer] = [:]
        var external: [[String]: CoreMetrics.Counter] = [:]
        var gauges: [String: [[String]: CoreMetrics.Gauge]] = [:]
        var ytDlpLabels: [String]?
    }
    private let handles = Mutex(Handles())
    private let downloadBytes: CoreMetrics.Counter
    private let written: CoreMetrics.Counter
    private let dead: CoreMetrics.Counter

    package init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["medianest_job_duration_seconds"] = Self.durationBuckets.map {
            Duration.nanoseconds(Int64(($0 * 1e9).rounded()))
        }
        self.factory = factory
        downloadBytes = CoreMetrics.Counter(label: "medianest_download_bytes_total", factory: factory)
        written = CoreMetrics.Counter(label: "medianest_records_written_total", factory: factory)
        dead = CoreMetrics.Counter(label: "medianest_records_dead_total", factory: factory)
    }

    /// Counts a job attempt's outcome: completed, failed, retried or cancelled.
    package func jobFinished(queue: String, type: String, outcome: String, seconds: Double?) {
        let (counter, timer) = handles.withLock { h -> (CoreMetrics.Counter, CoreMetrics.Timer?) in
            let key = [queue, type, outcome]
            let counter =
                h.jobs[key]
                ?? {
                    let c = CoreMetrics.Counter(
                        label: "medianest_jobs_total", dimensions: [("queue", queue), ("type", type), ("outcome", outcome)],
                        factory: factory)
                    h.jobs[key] = c
                    return c
                }()
            guard seconds != nil else { return (counter, nil) }
            let timer =
                h.durations[[queue, type]]
                ?? {
                    let t = CoreMetrics.Timer(
                        label: "medianest_job_duration_seconds", dimensions: [("queue", queue), ("type", type)], factory: factory)
                    h.durations[[queue, type]] = t
                    return t
                }()
            return (counter, timer)
        }
        counter.increment()
        if let seconds, let timer { timer.recordNanoseconds(Int64((max(seconds, 0) * 1e9).rounded())) }
    }

    /// Counts records this daemon wrote into PostgreSQL.
    package func recordsWritten(_ n: Int) { written.increment(by: n) }

    /// Counts a record PostgreSQL refused even escaped (kept in `P:records:dead`).
    package func recordDeadLettered() { dead.increment() }

    package func downloaded(bytes: Int64) { downloadBytes.increment(by: Int(clamping: bytes)) }

    package func externalRequest(service: String, outcome: String) {
        let counter = handles.withLock { h in
            h.external[[service, outcome]]
                ?? {
                    let c = CoreMetrics.Counter(
                        label: "medianest_external_requests_total", dimensions: [("service", service), ("outcome", outcome)],
                        factory: factory)
                    h.external[[service, outcome]] = c
                    return c
                }()
        }
        counter.increment()
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

    /// Sets the gauge `name` with these label values to `value` (made on first use).
    private func set(_ name: String, _ labels: [(String, String)], _ value: Double, in h: inout Handles) {
        let key = labels.map(\.1)
        let gauge =
            h.gauges[name, default: [:]][key]
            ?? {
                let g = CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory)
                h.gauges[name, default: [:]][key] = g
                return g
            }()
        gauge.record(value)
    }

    /// Sets the gauges from a scrape's live values. Series whose label no longer appears (a queue
    /// removed on reload, yt-dlp updated) are removed, not left at their last value.
    private func sample(_ gauges: Gauges) {
        handles.withLock { h in
            let labelled: [(String, String, [String: Double])] = [
                ("medianest_queue_depth", "queue", gauges.queueDepth.mapValues(Double.init)),
                ("medianest_jobs_active", "queue", gauges.jobsActive.mapValues(Double.init)),
                ("medianest_queue_paused", "queue", gauges.queuePaused.mapValues { $0 ? 1 : 0 }),
                ("medianest_circuit_open", "service", gauges.circuitOpen.mapValues { $0 ? 1 : 0 }),
            ]
            for (name, label, values) in labelled {
                for (key, gauge) in h.gauges[name] ?? [:] where values[key[0]] == nil {
                    gauge.destroy()
                    h.gauges[name]?[key] = nil
                }
                for (value, v) in values { set(name, [(label, value)], v, in: &h) }
            }
            if let y = gauges.ytDlp {
                let labels = [("version", y.version), ("channel", y.channel), ("js_runtime", y.jsRuntime)]
                if let old = h.ytDlpLabels, old != labels.map(\.1), let gauge = h.gauges["medianest_ytdlp_info"]?[old] {
                    gauge.destroy()
                    h.gauges["medianest_ytdlp_info"]?[old] = nil
                }
                h.ytDlpLabels = labels.map(\.1)
                set("medianest_ytdlp_info", labels, 1, in: &h)
                if let age = y.ageDays { set("medianest_ytdlp_age_seconds", [], Double(age) * 86400, in: &h) }
            }
            set("medianest_records_pending", [], Double(gauges.recordsPending), in: &h)
            set("medianest_records_oldest_seconds", [], gauges.recordsOldestSeconds, in: &h)
            set("medianest_outcomes_pending", [], Double(gauges.outcomesPending), in: &h)
        }
    }

    /// The exposition text: the registry's families, each after its HELP line, then `process_*`.
    package func render(gauges: Gauges) -> String {
        sample(gauges)
        var out = ""
        var exposed = Set<Substring>()
        for line in registry.emitToString().split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first {
                exposed.insert(name)
                if let help = Self.help[String(name)] { out += "# HELP \(name) \(help)\n" }
            }
            out += line + "\n"
        }
        for family in Self.families where family.always && !exposed.contains(Substring(family.name)) {
            out += "# HELP \(family.name) \(family.help)\n# TYPE \(family.name) \(family.type)\n"
        }
        out += ProcessMetrics.render()
        return out
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
