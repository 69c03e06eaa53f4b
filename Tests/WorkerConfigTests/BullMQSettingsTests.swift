import Testing

@testable import WorkerConfig

@Suite("The bullmq section")
struct BullMQSettingsTests {
    static let queues = """
        queues:
          default: { concurrency: 2 }
          youtube: { concurrency: 2 }
        schedules: {}
        """

    @Test func contractExampleGivesTheDefaults() throws {
        let configuration = try parse(
            Self.queues + """

                bullmq:
                  prefix: bull
                  queues:
                    youtube-downloads:
                      queue: youtube
                """)
        let bullmq = try #require(configuration.bullmq)
        #expect(bullmq.prefix == "bull" && bullmq.lockDuration == 30 && bullmq.maxStalled == 1 && bullmq.syncEvery == 0.25)
        #expect(bullmq.queues.count == 1)
        #expect(bullmq.queues[0].name == "youtube-downloads" && bullmq.queues[0].queue == "youtube")
        #expect(bullmq.queues[0].type(forJobName: "download-video") == "youtube.download")
        #expect(bullmq.queues[0].type(forJobName: "other") == nil)
    }

    @Test func absentSectionConsumesNoBullMQQueue() throws {
        #expect(try parse(Self.queues).bullmq == nil)
    }

    @Test func jobsMapReplacesTheDefault() throws {
        let configuration = try parse(
            Self.queues + """

                bullmq:
                  lock_duration: 10s
                  sync_every: 500ms
                  max_stalled: 3
                  queues:
                    work: { queue: default, jobs: { ping: noop, nap: sleep } }
                """)
        let q = try #require(configuration.bullmq?.queues.first)
        #expect(q.jobs.map(\.name) == ["ping", "nap"] && q.jobs.map(\.type) == ["noop", "sleep"])
        #expect(q.type(forJobName: "download-video") == nil)
        #expect(configuration.bullmq?.lockDuration == 10 && configuration.bullmq?.syncEvery == 0.5 && configuration.bullmq?.maxStalled == 3)
    }

    @Test(arguments: [
        ("bullmq:\n  queues:\n    q: { queue: nowhere }\n", "bullmq.queues.q.queue", 3, "no queue named \"nowhere\""),
        ("bullmq:\n  queues:\n    q: {}\n", "bullmq.queues.q.queue", 3, "name the queue of ours"),
        ("bullmq:\n  queues: {}\n", "bullmq.queues", 2, "name at least one BullMQ queue"),
        ("bullmq:\n  prefix: \"a b\"\n  queues:\n    q: { queue: default }\n", "bullmq.prefix", 2, "expected 1–64"),
        ("bullmq:\n  queues:\n    \"a b\": { queue: default }\n", "bullmq.queues.a b", 3, "a BullMQ queue name"),
        ("bullmq:\n  queues:\n    q: { queue: default, jobs: { x: Not A Type } }\n", "bullmq.queues.q.jobs.x", 3, "expected a job type"),
        ("bullmq:\n  queues:\n    q: { queue: default, jobs: {} }\n", "bullmq.queues.q.jobs", 3, "map at least one"),
        ("bullmq:\n  queues:\n    q: { queue: default, job: {} }\n", "bullmq.queues.q.job", 3, "did you mean \"jobs\""),
        ("bullmq:\n  lock_duration: 500ms\n  queues:\n    q: { queue: default }\n", "bullmq.lock_duration", 2, "from 1s to 1h"),
        ("bullmq:\n  sync_every: 20s\n  queues:\n    q: { queue: default }\n", "bullmq.sync_every", 2, "a third of lock_duration"),
        ("bullmq:\n  max_stalled: many\n  queues:\n    q: { queue: default }\n", "bullmq.max_stalled", 2, "a whole number from 0 to 1000"),
    ])
    func mistakesNameKeyAndLine(yaml: String, key: String, line: Int, message: String) {
        let error = parseError(Self.queues + "\n" + yaml)
        #expect(error?.key == key)
        #expect(error?.line == line + 4)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
    }
}
