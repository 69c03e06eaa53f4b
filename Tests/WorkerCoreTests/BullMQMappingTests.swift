import JSON
import Testing
import WorkerConfig

@testable import WorkerCore

@Suite("BullMQ jobs become jobs of ours")
struct BullMQMappingTests {
    let settings = BullMQQueueSettings(
        name: "youtube-downloads", queue: "youtube", jobs: [("download-video", "youtube.download"), ("ping", "noop")])

    func map(_ name: String = "download-video", data: String, opts: String = "{}", id: String = "7") -> Result<JobEnvelope, BullMQRefusal> {
        BullMQJobMapper.envelope(for: BullMQJob(id: id, name: name, data: data, opts: opts, attemptsMade: 0), settings: settings)
    }

    func refusal(_ result: Result<JobEnvelope, BullMQRefusal>) -> String? {
        if case .failure(let r) = result { return r.reason }
        return nil
    }

    @Test func theBackendsDownloadBecomesAYouTubeDownload() throws {
        let data = """
            {"downloadId":"3f1c8e2a-1111-4a5b-9c0d-0123456789ab","userId":"user-1","url":"https://youtu.be/x","quality":"720p",
             "format":"mp4","metadata":{"id":"x","title":"T","formats":[]}}
            """
        let opts = #"{"priority":1,"attempts":3,"backoff":{"type":"exponential","delay":5000},"removeOnComplete":{"count":100,"age":86400}}"#
        let envelope = try map(data: data, opts: opts).get()
        #expect(envelope.id == "bullmq:youtube-downloads:7" && envelope.type == "youtube.download")
        #expect(envelope.userId == "user-1" && envelope.maxAttempts == 3)
        #expect(envelope.backoff == JobBackoff(kind: .exponential, delayMilliseconds: 5000))
        #expect(envelope.payload["metadata"] == nil && envelope.payload["userId"] == nil)
        #expect(envelope.payload["url"]?.stringValue == "https://youtu.be/x" && envelope.payload["quality"]?.stringValue == "720p")
        // What the stream gets parses back to the same job, payload checked against its schema.
        let registry = HandlerRegistry.standard()
        let parsed = EnvelopeParser.parse(fields: [("job", Array(envelope.raw.utf8))], schema: registry.schema(for:))
        #expect((try? parsed.get())?.backoff == envelope.backoff)
        #expect((try? parsed.get())?.maxAttempts == 3)
    }

    @Test func otherTypesTakeTheDataAsPayloadAndZeroAttemptsIsOne() throws {
        let envelope = try map("ping", data: #"{"failAttempts":1}"#, opts: #"{"attempts":0,"backoff":250}"#).get()
        #expect(envelope.type == "noop" && envelope.payload["failAttempts"]?.intValue == 1)
        #expect(envelope.maxAttempts == 1 && envelope.backoff == JobBackoff(kind: .fixed, delayMilliseconds: 250))
    }

    @Test(arguments: [
        ("mystery", "{}", "{}", "no job type for the BullMQ job name \"mystery\""),
        ("download-video", "[1]", "{}", "data must be a JSON object"),
        ("download-video", "not json", "{}", "data must be a JSON object"),
        ("download-video", #"{"url":"u","color":"red"}"#, "{}", "data.color is not a field"),
        ("download-video", #"{"url":"u","userId":42}"#, "{}", "data.userId must be"),
        ("download-video", #"{"url":"u","metadata":"x"}"#, "{}", "data.metadata must be an object"),
        ("ping", "{}", #"{"attempts":"3"}"#, "opts.attempts must be"),
        ("ping", "{}", #"{"attempts":2.5}"#, "opts.attempts must be"),
        ("ping", "{}", #"{"backoff":{"type":"linear","delay":5}}"#, "'opts.backoff.type' must be"),
        ("ping", "{}", #"{"backoff":{"type":"fixed","delay":-1}}"#, "'opts.backoff.delay' must be"),
        ("ping", "{}", #"{"backoff":"soon"}"#, "opts.backoff' must be"),
        ("ping", "{}", "[]", "opts must be a JSON object"),
    ])
    func badJobsAreRefusedWithTheReason(name: String, data: String, opts: String, reason: String) {
        let got = refusal(map(name, data: data, opts: opts))
        #expect(got?.contains(reason) == true, "\(got ?? "accepted")")
    }

    @Test func anIdThatCannotBeOursIsRefused() {
        #expect(refusal(map("ping", data: "{}", id: "a b"))?.contains("cannot be a job id") == true)
    }

    @Test func backoffWaitsAsBullMQs() {
        let exp = JobBackoff(kind: .exponential, delayMilliseconds: 5000)
        #expect(exp.delay(afterAttempt: 1) == 5 && exp.delay(afterAttempt: 2) == 10 && exp.delay(afterAttempt: 3) == 20)
        #expect(exp.delay(afterAttempt: 200) == 86_400, "capped at a day")
        let fixed = JobBackoff(kind: .fixed, delayMilliseconds: 300)
        #expect(fixed.delay(afterAttempt: 1) == 0.3 && fixed.delay(afterAttempt: 9) == 0.3)
    }

    @Test func theEnvelopeBackoffFieldIsStrict() {
        let registry = HandlerRegistry.standard()
        func parse(_ backoff: String) -> Result<JobEnvelope, EnvelopeRejection> {
            let text = #"{"id":"a","type":"noop","payload":{},"backoff":"# + backoff + "}"
            return EnvelopeParser.parse(fields: [("job", Array(text.utf8))], schema: registry.schema(for:))
        }
        #expect((try? parse(#"{"type":"fixed","delay":100}"#).get())?.backoff == JobBackoff(kind: .fixed, delayMilliseconds: 100))
        #expect((try? parse("null").get())?.backoff == nil)
        for bad in [#""fast""#, #"{"delay":100}"#, #"{"type":"fixed","delay":"1s"}"#, "true", #"{"type":"fixed","delay":99999999999}"#] {
            guard case .failure(let rejection) = parse(bad) else {
                Issue.record("accepted backoff \(bad)")
                continue
            }
            #expect(rejection.reason.contains("backoff"), "\(rejection.reason)")
        }
    }
}
