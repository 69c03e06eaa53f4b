import JSON
import Yams

/// `bullmq` (contract section 11): BullMQ queues the daemon consumes the way a BullMQ 5 worker does.
package struct BullMQSettings: Sendable, Equatable {
    /// BullMQ's key prefix (`bull`, its default).
    package var prefix: String
    /// The consumed BullMQ queues, in file order.
    package var queues: [BullMQQueueSettings]
    /// How long a taken job's lock lives without renewal (BullMQ's `lockDuration`, 30 s).
    package var lockDuration: Double
    /// How often every daemon mirrors its jobs' progress and ends into BullMQ.
    package var syncEvery: Double
    /// How often a taken job may lose its lock before it fails (BullMQ's `maxStalledCount`, 1).
    package var maxStalled: Int

    package init(prefix: String = "bull", queues: [BullMQQueueSettings] = [], lockDuration: Double = 30, syncEvery: Double = 0.25, maxStalled: Int = 1) {
        self.prefix = prefix
        self.queues = queues
        self.lockDuration = lockDuration
        self.syncEvery = syncEvery
        self.maxStalled = maxStalled
    }
}

/// One BullMQ queue: which of our queues runs its jobs, and which job type each BullMQ job name is.
package struct BullMQQueueSettings: Sendable, Equatable {
    /// The BullMQ queue name (`youtube-downloads`).
    package var name: String
    /// Our queue whose concurrency, rate limit and timeout apply (`youtube`).
    package var queue: String
    /// BullMQ job name → our job type, in file order.
    package var jobs: [(name: String, type: String)]

    package static let defaultJobs: [(name: String, type: String)] = [("download-video", "youtube.download")]

    package init(name: String, queue: String, jobs: [(name: String, type: String)] = BullMQQueueSettings.defaultJobs) {
        self.name = name
        self.queue = queue
        self.jobs = jobs
    }

    /// Our job type for a BullMQ job name, nil when the name is not mapped.
    package func type(forJobName name: String) -> String? {
        jobs.first { $0.name == name }?.type
    }

    package static func == (a: BullMQQueueSettings, b: BullMQQueueSettings) -> Bool {
        a.name == b.name && a.queue == b.queue && a.jobs.map(\.name) == b.jobs.map(\.name) && a.jobs.map(\.type) == b.jobs.map(\.type)
    }
}

extension ConfigLoader {
    /// Characters of a BullMQ queue name we accept (they become Redis key parts and job ids).
    static let bullmqNameCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
    /// Characters of our job type names.
    static let jobTypeCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789_.-")

    /// `bullmq`: prefix, lock_duration, sync_every, max_stalled, queues {name: {queue, jobs}}.
    static func decodeBullMQ(_ top: Section, _ configuration: inout WorkerConfiguration, _ reader: ConfigReader) throws(ConfigError) {
        guard let section = try reader.section(top["bullmq"], key: "bullmq", known: ["prefix", "queues", "lock_duration", "sync_every", "max_stalled"])
        else { return }
        var settings = BullMQSettings()
        if let node = section["prefix"] {
            let prefix = try reader.text(node, key: section.path("prefix"), expected: "a key prefix")
            guard matches(prefix, allowed: prefixCharacters, length: 1...64) else {
                throw reader.error(
                    section.path("prefix"), "expected 1–64 of A-Z a-z 0-9 _ . : -, got \(reader.describe(node, text: prefix))", at: node)
            }
            settings.prefix = prefix
        }
        if let node = section["lock_duration"] {
            settings.lockDuration = try reader.duration(node, key: section.path("lock_duration"))
            guard settings.lockDuration >= 1 && settings.lockDuration <= 3600 else {
                throw reader.error(section.path("lock_duration"), "expected a duration from 1s to 1h", at: node)
            }
        }
        if let node = section["sync_every"] {
            settings.syncEvery = try reader.duration(node, key: section.path("sync_every"))
            guard settings.syncEvery >= 0.05 && settings.syncEvery <= settings.lockDuration / 3 else {
                throw reader.error(
                    section.path("sync_every"), "expected a duration from 50ms to a third of lock_duration (the lock is renewed on it)", at: node)
            }
        }
        if let node = section["max_stalled"] {
            settings.maxStalled = try reader.int(node, key: section.path("max_stalled"), range: 0...1000)
        }
        let entries = try reader.entries(section["queues"], key: section.path("queues"), expected: "a map of BullMQ queue names to their settings")
        guard !entries.isEmpty else {
            throw reader.error(section.path("queues"), "name at least one BullMQ queue (e.g. youtube-downloads: {queue: youtube})", at: section["queues"] ?? section.node)
        }
        for entry in entries {
            let key = section.path("queues") + ".\(entry.name)"
            guard matches(entry.name, allowed: bullmqNameCharacters, length: 1...64) else {
                throw reader.error(
                    key, "a BullMQ queue name here is 1–64 of A-Z a-z 0-9 _ . -, got \(JSONText.quote(entry.name, escapingNonPrintable: true))",
                    at: entry.keyNode)
            }
            let queue = try reader.section(entry.value, key: key, known: ["queue", "jobs"]) ?? Section(key: key, node: entry.value, entries: [])
            guard let queueNode = queue["queue"] else {
                throw reader.error(queue.path("queue"), "name the queue of ours that runs these jobs (one of: \(configuration.queueNames.joined(separator: ", ")))", at: entry.value)
            }
            let ours = try reader.text(queueNode, key: queue.path("queue"), expected: "a queue name")
            guard configuration.queue(named: ours) != nil else {
                throw reader.error(
                    queue.path("queue"), "no queue named \(JSONText.quote(ours, escapingNonPrintable: true)) in queues (have: \(configuration.queueNames.joined(separator: ", ")))",
                    at: queueNode)
            }
            var jobs = BullMQQueueSettings.defaultJobs
            if let jobsNode = queue["jobs"] {
                jobs = []
                for job in try reader.entries(jobsNode, key: queue.path("jobs"), expected: "a map of BullMQ job names to job types") {
                    let jobKey = queue.path("jobs") + ".\(job.name)"
                    guard !job.name.isEmpty, job.name.utf8.count <= 128, !job.name.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                        throw reader.error(jobKey, "a BullMQ job name is 1–128 printable characters", at: job.keyNode)
                    }
                    let type = try reader.text(job.value, key: jobKey, expected: "a job type")
                    guard matches(type, allowed: jobTypeCharacters, length: 1...64) else {
                        throw reader.error(jobKey, "expected a job type such as youtube.download, got \(reader.describe(job.value, text: type))", at: job.value)
                    }
                    jobs.append((job.name, type))
                }
                guard !jobs.isEmpty else {
                    throw reader.error(queue.path("jobs"), "map at least one BullMQ job name (e.g. download-video: youtube.download)", at: jobsNode)
                }
            }
            settings.queues.append(BullMQQueueSettings(name: entry.name, queue: ours, jobs: jobs))
        }
        configuration.bullmq = settings
    }
}
