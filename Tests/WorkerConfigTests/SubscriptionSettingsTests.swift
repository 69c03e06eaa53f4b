import Testing

@testable import WorkerConfig

@Suite("The subscriptions section")
struct SubscriptionSettingsTests {
    static let queues = """
        queues:
          default: { concurrency: 2 }
          youtube: { concurrency: 2 }
        schedules: {}
        """

    @Test func aFullEntryAndTheDefaults() throws {
        let configuration = try parse(
            Self.queues + """

                subscriptions:
                  tech:
                    url: https://www.youtube.com/@example/videos
                    user: user-7
                    quality: 720P
                    format: mkv
                    output: "{channel}/{date} {title}.{ext}"
                    collection: Tech
                    check_every: 2h
                    backfill: 3
                    keep_last: 20
                    max_age: 30d
                    enabled: false
                  feed:
                    url: http://127.0.0.1:8080/feed.xml
                """)
        let subs = configuration.subscriptions
        #expect(subs.map(\.name) == ["tech", "feed"])
        #expect(subs[0].userId == "user-7" && subs[0].quality == "720p" && subs[0].format == "mkv")
        #expect(subs[0].output == "{channel}/{date} {title}.{ext}" && subs[0].collection == "Tech")
        #expect(subs[0].checkEvery == 7200 && subs[0].backfill == 3 && subs[0].keepLast == 20 && subs[0].maxAge == 30 * 86_400)
        #expect(subs[0].enabled == false)
        #expect(subs[1].checkEvery == 21_600 && subs[1].backfill == 10 && subs[1].keepLast == nil && subs[1].maxAge == nil)
        #expect(subs[1].enabled && subs[1].quality == nil && subs[1].userId == nil)
        #expect(SubscriptionSettings.queue(in: configuration) == "youtube")
        #expect(configuration.maskedDescription().contains("check_every: 2h"))
    }

    @Test func absentSectionHasNone() throws {
        #expect(try parse(Self.queues).subscriptions.isEmpty)
    }

    @Test func theQueueFallsBackToDefaultThenTheFirst() throws {
        #expect(SubscriptionSettings.queue(in: try parse("queues:\n  default: {}\n  media: {}\n")) == "default")
        #expect(SubscriptionSettings.queue(in: try parse("queues:\n  media: {}\nschedules: {}\n")) == "media")
    }

    @Test(arguments: [
        ("subscriptions:\n  s: { url: ftp://x/y }\n", "subscriptions.s.url", 2, "http or https"),
        ("subscriptions:\n  s: {}\n", "subscriptions.s.url", 2, "missing"),
        ("subscriptions:\n  \"a b\": { url: https://x.example/c }\n", "subscriptions.a b", 2, "subscription name"),
        ("subscriptions:\n  s: { url: https://x.example/c, quality: 4k }\n", "subscriptions.s.quality", 2, "one of best"),
        ("subscriptions:\n  s: { url: https://x.example/c, check_every: soon }\n", "subscriptions.s.check_every", 2, "a duration"),
        ("subscriptions:\n  s: { url: https://x.example/c, check_every: 400d }\n", "subscriptions.s.check_every", 2, "at most 366d"),
        ("subscriptions:\n  s: { url: https://x.example/c, keep_last: 0 }\n", "subscriptions.s.keep_last", 2, "1"),
        ("subscriptions:\n  s: { url: https://x.example/c, backfill: -1 }\n", "subscriptions.s.backfill", 2, ""),
        ("subscriptions:\n  s: { url: https://x.example/c, enabled: maybe }\n", "subscriptions.s.enabled", 2, ""),
        (
            "subscriptions:\n  s: { url: https://x.example/c, output: \"{nope}.{ext}\" }\n", "subscriptions.s.output", 2,
            "unknown placeholder"
        ),
        ("subscriptions:\n  s: { url: https://x.example/c, keeplast: 3 }\n", "subscriptions.s.keeplast", 2, "keep_last"),
        ("subscriptions: [a]\n", "subscriptions", 1, "a map of subscription names"),
    ])
    func mistakesNameKeyAndLine(yaml: String, key: String, line: Int, message: String) {
        let error = parseError(Self.queues + "\n" + yaml)
        #expect(error?.key == key, "\(error.map { "\($0)" } ?? "no error")")
        #expect(error?.line == line + 4)
        #expect(message.isEmpty || error?.message.contains(message) == true, "\(error?.message ?? "no error")")
    }
}
