import Foundation
import JSON
import Testing

@testable import WorkerCore

@Suite("Envelope validation")
struct EnvelopeTests {
    let known: (String) -> PayloadSchema? = { ["noop", "sleep", "youtube.download"].contains($0) ? .empty : nil }

    func parse(_ json: String, field: String = "job") -> Result<JobEnvelope, EnvelopeRejection> {
        EnvelopeParser.parse(fields: [(field, Array(json.utf8))], schema: known)
    }

    func reason(_ json: String) -> String? {
        if case .failure(let r) = parse(json) { return r.reason }
        return nil
    }

    @Test func acceptsAFullEnvelope() throws {
        let env = try parse(
            #"{"id":"a.b:c-1_2","type":"noop","payload":{"x":[1,2.5,"s"]},"userId":"u7","maxAttempts":5,"runAt":"2026-01-02T03:04:05.678+01:00","timeoutSeconds":30}"#
        ).get()
        #expect(env.id == "a.b:c-1_2")
        #expect(env.payloadJSON == #"{"x":[1,2.5,"s"]}"#)
        #expect(env.userId == "u7")
        #expect(env.maxAttempts == 5)
        #expect(env.timeoutSeconds == 30)
        #expect(env.runAt == Timestamp.parse("2026-01-02T02:04:05.678Z"))
    }

    @Test func poisonEntriesNameTheProblem() {
        #expect(reason("not json")?.contains("not valid JSON") == true)
        #expect(reason("[1,2]")?.contains("not an array") == true)
        #expect(reason(#"{"type":"noop","payload":{}}"#)?.contains("no 'id'") == true)
        #expect(reason(#"{"id":"x","payload":{}}"#)?.contains("no 'type'") == true)
        #expect(reason(#"{"id":"x","type":"nope","payload":{}}"#)?.contains("unknown job type 'nope'") == true)
        #expect(reason(#"{"id":"has space","type":"noop","payload":{}}"#)?.contains("is not 1–128 characters") == true)
        #expect(reason(#"{"id":"x","type":"noop"}"#)?.contains("no 'payload'") == true)
        #expect(reason(#"{"id":"x","type":"noop","payload":[]}"#)?.contains("must be a JSON object") == true)
        #expect(reason(#"{"id":"x","type":"noop","payload":{},"maxAttempts":0}"#)?.contains("maxAttempts") == true)
        #expect(reason(#"{"id":"x","type":"noop","payload":{},"maxAttempts":1.5}"#)?.contains("maxAttempts") == true)
        #expect(reason(#"{"id":"x","type":"noop","payload":{},"runAt":"tomorrow"}"#)?.contains("RFC 3339") == true)
        #expect(reason(#"{"id":"\#(String(repeating: "a", count: 129))","type":"noop","payload":{}}"#) != nil)
        #expect(reason(#"{"id":"..","type":"noop","payload":{}}"#) != nil)
        #expect(reason(#"{"id":".","type":"noop","payload":{}}"#) != nil)
        #expect(reason(#"{"id":"...","type":"noop","payload":{}}"#) == nil)
    }

    @Test func rejectionsKeepTheIdWhenUsable() {
        guard case .failure(let r) = parse(#"{"id":"known-1","type":"nope","payload":{}}"#) else { Issue.record("accepted"); return }
        #expect(r.id == "known-1")
        guard case .failure(let bad) = parse(#"{"id":"bad id","type":"noop","payload":{}}"#) else { Issue.record("accepted"); return }
        #expect(bad.id == nil)
    }

    @Test func oversizedEntriesAreRefusedWithTheirId() {
        let big = String(repeating: "x", count: 100 * 1024)
        guard case .failure(let r) = parse(#"{"id":"big-1","type":"noop","payload":{"blob":"\#(big)"}}"#) else {
            Issue.record("accepted"); return
        }
        #expect(r.reason.contains("limit is 64 KiB"))
        #expect(r.id == "big-1")
    }

    @Test func entryWithoutJobField() {
        guard case .failure(let r) = EnvelopeParser.parse(fields: [("data", Array("{}".utf8))], schema: known) else {
            Issue.record("accepted"); return
        }
        #expect(r.reason.contains("no 'job' field"))
    }

    @Test func queueNames() {
        #expect(JobEnvelope.isValidQueueName("youtube_2-x"))
        #expect(!JobEnvelope.isValidQueueName("YouTube"))
        #expect(!JobEnvelope.isValidQueueName(""))
        #expect(!JobEnvelope.isValidQueueName(String(repeating: "a", count: 65)))
    }
}

@Suite("Timestamps")
struct TimestampTests {
    @Test func formatsAndParses() {
        #expect(Timestamp.format(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(milliseconds: 1_795_553_692_260) == "2026-11-24T20:54:52.260Z")
        #expect(Timestamp.parse("2026-11-24T20:54:52.260Z") == 1_795_553_692_260)
        #expect(Timestamp.parse("2026-11-24T21:54:52.26+01:00") == 1_795_553_692_260)
        #expect(Timestamp.parse("2024-02-29T00:00:00Z") == 1_709_164_800_000)
        #expect(Timestamp.parse("2026-13-01T00:00:00Z") == nil)
        #expect(Timestamp.parse("2026-11-24 20:54") == nil)
        #expect(Timestamp.parse("2026-11-24T20:54:52") == nil)
    }

    @Test func formatsEveryFieldWithItsWidth() {
        // Single-digit month, day, hour, minute, second and a millisecond below 100; then the year 9999.
        #expect(Timestamp.format(milliseconds: 1_704_157_383_007) == "2024-01-02T01:03:03.007Z")
        #expect(Timestamp.format(milliseconds: 253_402_300_799_999) == "9999-12-31T23:59:59.999Z")
        for ms in stride(from: Int64(1_600_000_000_000), to: 1_900_000_000_000, by: 7_777_777_777) {
            #expect(Timestamp.parse(Timestamp.format(milliseconds: ms)) == ms)
        }
    }

    @Test func streamEntryIDsAreReadFromTheirBytes() {
        #expect(StreamEntry.idParts("1700000000000-42") == (1_700_000_000_000, 42))
        #expect(StreamEntry.idParts("1700000000000") == (1_700_000_000_000, 0))
        #expect(StreamEntry.idParts("17x-1").milliseconds == nil)
        #expect(StreamEntry.idParts("").milliseconds == nil)
        #expect(StreamEntry.idParts("5-x") == (5, 0))
        #expect(StreamEntry.idParts("99999999999999999999-1").milliseconds == nil, "overflow is no number")
        #expect(StreamEntry(id: "1700000000000-3", fields: []).addedAtMilliseconds == 1_700_000_000_000)
    }
}

@Suite("Retry backoff")
struct RetryTests {
    @Test func growsExponentiallyWithJitterAndCap() {
        let p = RetryPolicy(initial: 5, maximum: 600)
        #expect(p.delay(afterAttempt: 1, random: 0.5) == 5)
        #expect(p.delay(afterAttempt: 2, random: 0.5) == 10)
        #expect(p.delay(afterAttempt: 3, random: 0.5) == 20)
        #expect(p.delay(afterAttempt: 1, random: 0) == 3.75)
        #expect(p.delay(afterAttempt: 1, random: 0.9999) < 6.25)
        #expect(p.delay(afterAttempt: 40, random: 0.99) == 600)
        #expect(p.delay(afterAttempt: 200, random: 0.5) <= 600)
    }
}

@Suite("Events")
struct EventTests {
    @Test func namesFollowTheWebClient() throws {
        let yt = JobDescriptor(
            id: "j", type: "youtube.download", queue: "youtube", userId: "u",
            events: YouTubeDownloadHandler.events, correlation: "d-1")
        let retry = try #require(JSONValue.parse(EventFactory.make(.retrying, job: yt, at: "t", fields: [("error", .string("boom"))])))
        #expect(retry["event"]?.stringValue == "youtube:failed")
        #expect(retry["willRetry"]?.boolValue == true)
        #expect(retry["downloadId"]?.stringValue == "d-1")
        let other = JobDescriptor(id: "j", type: "noop", queue: "default")
        let started = try #require(JSONValue.parse(EventFactory.make(.started, job: other, at: "t")))
        #expect(started["event"]?.stringValue == "job:started")
        #expect(started["userId"] == nil)
        #expect(HandlerRegistry.builtIn().events(for: "noop").name(.retrying) == "job:retrying")
    }
}

@Suite("Library paths")
struct LibraryPathTests {
    @Test func staysInsideTheLibrary() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("libpath-\(UUID().uuidString)").path
        let library = root + "/library"
        try FileManager.default.createDirectory(atPath: library + "/show", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: library + "/show/a.mp4", contents: Data([1]))
        FileManager.default.createFile(atPath: root + "/secret.mp4", contents: Data([1]))
        try FileManager.default.createSymbolicLink(atPath: library + "/escape.mp4", withDestinationPath: root + "/secret.mp4")
        defer { try? FileManager.default.removeItem(atPath: root) }

        #expect(try LibraryPath.resolve("show/a.mp4", library: library).hasSuffix("/library/show/a.mp4"))
        #expect(try LibraryPath.resolve(library + "/show/a.mp4", library: library).hasSuffix("/show/a.mp4"))
        #expect(throws: JobFailure.self) { try LibraryPath.resolve("../secret.mp4", library: library) }
        #expect(throws: JobFailure.self) { try LibraryPath.resolve("escape.mp4", library: library) }
        #expect(throws: JobFailure.self) { try LibraryPath.resolve("/etc/passwd", library: library) }
        #expect(throws: JobFailure.self) { try LibraryPath.resolve("show", library: library) }
        #expect(throws: JobFailure.self) { try LibraryPath.resolve("missing.mp4", library: library) }
        #expect(try LibraryPath.resolve("show/new.mkv", library: library, mustExist: false).hasSuffix("/show/new.mkv"))
        #expect(throws: JobFailure.self) { try LibraryPath.resolve("../new.mkv", library: library, mustExist: false) }
    }
}

@Suite("Metrics")
struct MetricsTests {
    @Test func rendersPrometheusText() {
        let m = Metrics()
        m.jobFinished(queue: "default", type: "noop", outcome: "completed", seconds: 0.003)
        m.jobFinished(queue: "default", type: "noop", outcome: "completed", seconds: 2)
        var g = Metrics.Gauges()
        g.queueDepth["default"] = 7
        g.queuePaused["default"] = true
        let text = m.render(gauges: g)
        #expect(text.contains(#"medianest_jobs_total{queue="default",type="noop",outcome="completed"} 2"#))
        #expect(text.contains(#"medianest_job_duration_seconds_bucket{queue="default",type="noop",le="0.005"} 1"#))
        #expect(text.contains(#"medianest_job_duration_seconds_bucket{queue="default",type="noop",le="+Inf"} 2"#))
        #expect(text.contains(#"medianest_queue_depth{queue="default"} 7"#))
        #expect(text.contains(#"medianest_queue_paused{queue="default"} 1"#))
        #expect(text.contains("process_resident_memory_bytes "))
    }

    @Test func everyFamilyHasItsHelpAndTypeAndStaleSeriesGo() {
        let m = Metrics()
        m.externalRequest(service: "plex", outcome: "ok")
        var g = Metrics.Gauges()
        g.queueDepth = ["default": 1, "gone": 2]
        g.ytDlp = (version: "2026.10.26", channel: "stable", jsRuntime: "node", ageDays: 3)
        _ = m.render(gauges: g)
        g.queueDepth = ["default": 4]
        g.ytDlp = (version: "2026.12.01", channel: "stable", jsRuntime: "node", ageDays: 1)
        let text = m.render(gauges: g)
        let lines = text.split(separator: "\n").map(String.init)
        for family in Metrics.families {
            let type = lines.firstIndex(of: "# TYPE \(family.name) \(family.type)")
            #expect(type != nil, "\(family.name)")
            if let type { #expect(type > 0 && lines[type - 1] == "# HELP \(family.name) \(family.help)", "\(family.name)") }
        }
        #expect(text.contains(#"medianest_queue_depth{queue="default"} 4"#))
        #expect(!text.contains(#"queue="gone""#), "a queue that went is not reported at its last depth")
        #expect(text.contains(#"medianest_ytdlp_info{version="2026.12.01",channel="stable",js_runtime="node"} 1"#))
        #expect(!text.contains("2026.10.26"), "the yt-dlp replaced is not reported any more")
        #expect(text.contains("medianest_ytdlp_age_seconds 86400"))
        #expect(text.contains(#"medianest_external_requests_total{service="plex",outcome="ok"} 1"#))
    }
}
