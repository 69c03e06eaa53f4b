import Foundation
import JSON
import Testing

@testable import WorkerCore

@Suite("Payload schemas")
struct PayloadSchemaTests {
    let registry = HandlerRegistry.standard()

    /// The first mismatch of `payload` (JSON text) for `type`; fails the test for an unknown type.
    func problem(_ type: String, _ payload: String) -> String? {
        guard let schema = registry.schema(for: type) else {
            Issue.record("no schema for \(type)")
            return "no schema"
        }
        guard let value = JSONValue.parse(payload) else {
            Issue.record("bad test JSON: \(payload)")
            return "bad JSON"
        }
        return schema.validate(value)
    }

    /// `base` (a JSON object's members, without braces) with `extra` members added after it.
    func object(_ base: String, _ extra: String) -> String {
        "{" + [base, extra].filter { !$0.isEmpty }.joined(separator: ",") + "}"
    }

    func expectRefused(
        _ type: String, base: String = "", _ cases: [(String, String)],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for (extra, expected) in cases {
            let payload = object(base, extra)
            #expect(problem(type, payload) == expected, "\(type) \(payload)", sourceLocation: sourceLocation)
        }
    }

    func expectAccepted(
        _ type: String, base: String = "", _ extras: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for extra in extras {
            let payload = object(base, extra)
            #expect(problem(type, payload) == nil, "\(type) \(payload)", sourceLocation: sourceLocation)
        }
    }

    @Test func everyTypeHasASchema() {
        for type in registry.types {
            #expect(registry.schema(for: type) != nil, "\(type)")
            #expect(registry.knows(type))
        }
        #expect(
            Set(registry.types) == [
                "cleanup", "media.convert", "media.thumbnail", "noop", "notification.send", "overseerr.submit", "overseerr.sync",
                "plex.scan",
                "service.health", "sleep", "youtube.download", "youtube.subscription", "youtube.update",
            ])
        #expect(registry.schema(for: "no.such.type") == nil && !registry.knows("no.such.type"))
    }

    @Test func youtubeSubscription() {
        expectAccepted("youtube.subscription", [#""subscriptionId":"tech-channel""#, #""subscriptionId":"3f2c1e9a-8b7d-4c6e-9f01-23456789abcd""#])
        expectRefused(
            "youtube.subscription",
            [
                ("", "payload.subscriptionId is required"),
                (#""subscriptionId":7"#, "payload.subscriptionId must be a string of 1 to 128 characters"),
                ("\"subscriptionId\":\"\"", "payload.subscriptionId must be a string of 1 to 128 characters"),
            ])
    }

    @Test func youtubeUpdate() {
        expectAccepted("youtube.update", ["", #""host":"h-1-ab","until":1767225600000"#, #""host":null,"until":null"#])
        expectRefused(
            "youtube.update",
            [
                (#""host":"""#, "payload.host must be a string of 1 to 200 characters"),
                (#""host":7"#, "payload.host must be a string of 1 to 200 characters"),
                (#""until":-1"#, "payload.until must be a whole number ≥ 0"),
                (#""until":1.5"#, "payload.until must be a whole number ≥ 0"),
            ])
    }

    @Test func noop() {
        expectAccepted(
            "noop",
            [
                "", #""failAttempts":0"#, #""failAttempts":2,"fail":"x","permanent":true"#,
                #""failAttempts":null,"fail":null,"permanent":null"#, #""other":{"any":[1]}"#,
            ])
        expectRefused(
            "noop",
            [
                (#""failAttempts":"2""#, "payload.failAttempts must be a whole number ≥ 0"),
                (#""failAttempts":-1"#, "payload.failAttempts must be a whole number ≥ 0"),
                (#""failAttempts":1.5"#, "payload.failAttempts must be a whole number ≥ 0"),
                (#""fail":5"#, "payload.fail must be a string"),
                (#""fail":["x"]"#, "payload.fail must be a string"),
                (#""permanent":"yes""#, "payload.permanent must be true or false"),
                (#""permanent":1"#, "payload.permanent must be true or false"),
            ])
    }

    @Test func sleep() {
        expectAccepted("sleep", ["", #""seconds":null"#, #""seconds":0"#, #""seconds":0.25"#, #""seconds":86400"#, #""seconds":1e2"#])
        let sentence = "payload.seconds must be a number from 0 to 86400"
        expectRefused(
            "sleep",
            [
                (#""seconds":"abc""#, sentence), (#""seconds":"1""#, sentence), (#""seconds":-1"#, sentence),
                (#""seconds":-0.001"#, sentence), (#""seconds":86400.5"#, sentence), (#""seconds":1e999"#, sentence),
                (#""seconds":true"#, sentence), (#""seconds":[]"#, sentence), (#""seconds":{}"#, sentence),
            ])
    }

    @Test func mediaConvert() {
        let base = #""path":"a.mp4","format":"mkv""#
        expectAccepted("media.convert", base: base, [""])
        for format in ["mp4", "mkv", "webm", "m4a", "mp3"] {
            #expect(problem("media.convert", #"{"path":"a.mp4","format":"\#(format)"}"#) == nil)
        }
        let formats = "payload.format must be one of mp4, mkv, webm, m4a, mp3"
        #expect(problem("media.convert", #"{"format":"mkv"}"#) == "payload.path is required")
        #expect(problem("media.convert", #"{"path":null,"format":"mkv"}"#) == "payload.path is required")
        #expect(problem("media.convert", #"{"path":"a.mp4"}"#) == "payload.format is required")
        #expect(problem("media.convert", #"{"path":5,"format":"mkv"}"#) == "payload.path must be a non-empty string")
        #expect(problem("media.convert", #"{"path":"","format":"mkv"}"#) == "payload.path must be a non-empty string")
        #expect(problem("media.convert", #"{"path":"a.mp4","format":"flac"}"#) == formats)
        #expect(problem("media.convert", #"{"path":"a.mp4","format":5}"#) == formats)
        #expect(problem("media.convert", #"{"path":"a.mp4","format":"MKV"}"#) == formats)
    }

    @Test func mediaThumbnail() {
        let base = #""path":"a.mp4""#
        expectAccepted(
            "media.thumbnail", base: base,
            [
                "", #""at":0"#, #""at":12.5"#, #""width":16"#, #""width":7680"#,
                #""width":160.0"#, #""format":"jpeg""#, #""format":"jpg""#,
                #""format":"png""#, #""mode":"keyframe""#, #""mode":"exact""#,
                #""mode":"poster""#, #""at":null,"width":null,"format":null,"mode":null"#,
            ])
        let at = "payload.at must be a number ≥ 0"
        let width = "payload.width must be a whole number from 16 to 7680"
        expectRefused(
            "media.thumbnail", base: base,
            [
                (#""at":"abc""#, at), (#""at":[]"#, at), (#""at":-1"#, at), (#""at":"10""#, at),
                (#""width":"abc""#, width), (#""width":15"#, width), (#""width":7681"#, width), (#""width":160.5"#, width),
                (#""width":true"#, width),
                (#""format":"gif""#, "payload.format must be one of jpeg, jpg, png"),
                (#""format":1"#, "payload.format must be one of jpeg, jpg, png"),
                (#""mode":"fast""#, "payload.mode must be one of keyframe, exact, poster"),
                (#""mode":false"#, "payload.mode must be one of keyframe, exact, poster"),
            ])
        #expect(problem("media.thumbnail", #"{"at":1}"#) == "payload.path is required")
        #expect(problem("media.thumbnail", #"{"path":7}"#) == "payload.path must be a non-empty string")
    }

    @Test func plexScan() {
        expectAccepted(
            "plex.scan",
            [
                "", #""path":"Channel""#, #""path":null"#,
                #""path":"/l/c","file":"/l/c/v.mp4","title":"T","summary":"S","date":"2024-01-31","poster":"/l/c/v.jpg","collection":"C","downloadId":"d","downloadJobId":"j""#,
            ])
        expectRefused(
            "plex.scan",
            [
                (#""path":5"#, "payload.path must be a non-empty string"),
                (#""path":"""#, "payload.path must be a non-empty string"),
                (#""path":["a"]"#, "payload.path must be a non-empty string"),
                (#""file":5"#, "payload.file must be a non-empty string"),
                (#""title":5"#, "payload.title must be a string"),
                (#""summary":{}"#, "payload.summary must be a string"),
                (#""date":20240131"#, "payload.date must be a string"),
                (#""poster":true"#, "payload.poster must be a string"),
                (#""collection":5"#, "payload.collection must be a string"),
                (#""downloadId":5"#, "payload.downloadId must be a string"),
                (#""downloadJobId":[]"#, "payload.downloadJobId must be a string"),
            ])
    }

    @Test func overseerrSubmit() {
        let base = #""requestId":"r1","mediaType":"movie","tmdbId":42"#
        expectAccepted("overseerr.submit", base: base, ["", #""title":"Film""#, #""seasons":null"#, #""seasons":"all""#])
        #expect(
            problem("overseerr.submit", #"{"requestId":7,"mediaType":"tv","tmdbId":"42","seasons":[0,1,2]}"#) == nil,
            "a numeric request id and a numeric-string TMDB id are taken as they are today")
        #expect(problem("overseerr.submit", #"{"requestId":"r","mediaType":"tv","tmdbId":2147483647,"seasons":[]}"#) == nil)
        let requestId = "payload.requestId must be a string of 1 to 128 characters or a number"
        let tmdbId = "payload.tmdbId must be a whole number from 1 to 2147483647 or a string of a whole number from 1 to 2147483647"
        let seasons = #"payload.seasons must be a list of whole numbers ≥ 0 or "all""#
        #expect(problem("overseerr.submit", #"{"mediaType":"movie","tmdbId":42}"#) == "payload.requestId is required")
        #expect(problem("overseerr.submit", #"{"requestId":"r1","tmdbId":42}"#) == "payload.mediaType is required")
        #expect(problem("overseerr.submit", #"{"requestId":"r1","mediaType":"movie"}"#) == "payload.tmdbId is required")
        let long = String(repeating: "r", count: 129)
        for (payload, expected) in [
            (#"{"requestId":true,"mediaType":"movie","tmdbId":42}"#, requestId),
            (#"{"requestId":"","mediaType":"movie","tmdbId":42}"#, requestId),
            (#"{"requestId":"\#(long)","mediaType":"movie","tmdbId":42}"#, requestId),
            (#"{"requestId":["r"],"mediaType":"movie","tmdbId":42}"#, requestId),
            (#"{"requestId":"r1","mediaType":"book","tmdbId":42}"#, "payload.mediaType must be one of movie, tv"),
            (#"{"requestId":"r1","mediaType":1,"tmdbId":42}"#, "payload.mediaType must be one of movie, tv"),
            (#"{"requestId":"r1","mediaType":"movie","tmdbId":0}"#, tmdbId),
            (#"{"requestId":"r1","mediaType":"movie","tmdbId":-4}"#, tmdbId),
            (#"{"requestId":"r1","mediaType":"movie","tmdbId":1.5}"#, tmdbId),
            (#"{"requestId":"r1","mediaType":"movie","tmdbId":2147483648}"#, tmdbId),
            (#"{"requestId":"r1","mediaType":"movie","tmdbId":"abc"}"#, tmdbId),
            (#"{"requestId":"r1","mediaType":"movie","tmdbId":"0"}"#, tmdbId),
            (#"{"requestId":"r1","mediaType":"movie","tmdbId":true}"#, tmdbId),
            (#"{"requestId":"r1","mediaType":"tv","tmdbId":42,"seasons":"some"}"#, seasons),
            (#"{"requestId":"r1","mediaType":"tv","tmdbId":42,"seasons":[1,-1]}"#, seasons),
            (#"{"requestId":"r1","mediaType":"tv","tmdbId":42,"seasons":[1,"2"]}"#, seasons),
            (#"{"requestId":"r1","mediaType":"tv","tmdbId":42,"seasons":3}"#, seasons),
            (#"{"requestId":"r1","mediaType":"movie","tmdbId":42,"seasons":[1]}"#, "payload.seasons only applies to mediaType tv"),
            (#"{"requestId":"r1","mediaType":"movie","tmdbId":42,"title":5}"#, "payload.title must be a string"),
        ] {
            #expect(problem("overseerr.submit", payload) == expected, "\(payload)")
        }
    }

    @Test func overseerrParseReadsWhatTheSchemaLetThrough() throws {
        let r = try OverseerrSubmitHandler.parse(
            JSONValue.parse(#"{"requestId":7,"mediaType":"tv","tmdbId":"42","seasons":[1,2],"title":"T"}"#)!)
        #expect(r.id == "7" && r.mediaType == "tv" && r.tmdbId == 42 && r.seasons == [1, 2] && r.title == "T")
        let all = try OverseerrSubmitHandler.parse(JSONValue.parse(#"{"requestId":"a","mediaType":"tv","tmdbId":1,"seasons":"all"}"#)!)
        #expect(all.seasons == nil)
        do {
            _ = try OverseerrSubmitHandler.parse(JSONValue.parse(#"{"requestId":"a","mediaType":"tv","tmdbId":1,"title":5}"#)!)
            Issue.record("accepted a title of the wrong type")
        } catch let failure as JobFailure {
            #expect(failure.message == "payload.title must be a string" && !failure.retryable)
        }
    }

    @Test func youtubeDownload() {
        let base = #""url":"https://youtu.be/dQw4w9WgXcQ""#
        expectAccepted(
            "youtube.download", base: base,
            [
                "", #""downloadId":"3f2c1e9a-8b7d-4c6e-9f01-23456789abcd""#, #""downloadId":"3F2C1E9A-8B7D-4C6E-9F01-23456789ABCD""#,
                #""quality":"best","format":"webm""#, #""quality":"audio","format":"mp3""#, #""subtitles":{}"#,
                #""subtitles":{"languages":["en","pt-BR","zh_Hans"],"auto":true,"embed":false}"#, #""subtitles":{"languages":[]}"#,
                #""subtitles":null,"collection":null,"quality":null,"format":null,"downloadId":null"#, #""collection":"Music""#,
                #""userId":"u1""#, #""metadata":{"anything":1}"#,
                #""playlist":{"jobId":"p","downloadId":"d","title":"T","url":"u","index":2,"count":12},"entry":{"title":"E","channel":"C","description":"D","timestamp":1700000000}"#,
            ])
        let quality = "payload.quality must be one of best, 2160p, 1440p, 1080p, 720p, 480p, 360p, audio"
        let format = "payload.format must be one of mp4, mkv, webm, m4a, mp3"
        let uuid = "payload.downloadId must be a UUID such as 3f2c1e9a-8b7d-4c6e-9f01-23456789abcd"
        let languages =
            "payload.subtitles.languages must be a list of at most 20 language codes such as en or pt-BR (1 to 35 letters, digits, - or _)"
        let language = "payload.subtitles.languages[1] must be a language code such as en or pt-BR (1 to 35 letters, digits, - or _)"
        let many = (0...20).map { "\"l\($0)\"" }.joined(separator: ",")
        expectRefused(
            "youtube.download", base: base,
            [
                (#""downloadId":"nope""#, uuid), (#""downloadId":5"#, uuid), (#""downloadId":"3f2c1e9a8b7d4c6e9f0123456789abcd""#, uuid),
                (#""quality":1080"#, quality), (#""quality":"4k""#, quality), (#""quality":"1080""#, quality),
                (#""format":5"#, format), (#""format":"avi""#, format),
                (#""subtitles":"en""#, "payload.subtitles must be an object"),
                (#""subtitles":["en"]"#, "payload.subtitles must be an object"),
                (#""subtitles":{"auto":"yes"}"#, "payload.subtitles.auto must be true or false"),
                (#""subtitles":{"embed":1}"#, "payload.subtitles.embed must be true or false"),
                (#""subtitles":{"languages":"en"}"#, languages),
                (#""subtitles":{"languages":[\#(many)]}"#, languages),
                (#""subtitles":{"languages":["en",5]}"#, language),
                (#""subtitles":{"languages":["en","en.*"]}"#, language),
                (#""collection":5"#, "payload.collection must be a string"),
                (#""userId":5"#, "payload.userId must be a string of 1 to 128 characters"),
                (#""playlist":"p""#, "payload.playlist must be an object"),
                (#""playlist":{"jobId":"p"}"#, "payload.playlist.downloadId is required"),
                (#""playlist":{"jobId":"p","downloadId":"d","index":"2"}"#, "payload.playlist.index must be a whole number ≥ 0"),
                (#""entry":{"timestamp":"x"}"#, "payload.entry.timestamp must be a number"),
            ])
        #expect(problem("youtube.download", "{}") == "payload.url is required")
        #expect(problem("youtube.download", #"{"url":null}"#) == "payload.url is required")
        #expect(problem("youtube.download", #"{"url":5}"#) == "payload.url must be a non-empty string")
        #expect(problem("youtube.download", #"{"quality":5}"#) == "payload.url is required", "the first mismatch, in field order")
    }

    @Test func typesWithoutFieldsIgnoreWhatTheyAreGiven() {
        for type in ["cleanup", "service.health"] {
            #expect(problem(type, "{}") == nil)
            #expect(problem(type, #"{"anything":[1,{"x":null}]}"#) == nil)
        }
    }

    @Test func aPayloadThatIsNotAnObject() {
        #expect(PayloadSchema.empty.validate(.array([])) == "payload must be an object, not an array")
    }

    @Test func handlersRefuseWhatThePayloadSchemaRefuses() {
        do {
            try SleepHandler.schema.check(JSONValue.parse(#"{"seconds":-1}"#)!)
            Issue.record("accepted")
        } catch {
            #expect(error.message == "payload.seconds must be a number from 0 to 86400" && !error.retryable)
        }
    }

    @Test func summaries() {
        #expect(SleepHandler.schema.summary == "seconds?: number 0–86400")
        #expect(PayloadSchema.empty.summary == "{}")
        #expect(
            registry.schema(for: "media.convert")?.summary
                == "path: non-empty string, format: one of mp4·mkv·webm·m4a·mp3, cut?: [{start: number ≥ 0, end: number ≥ 0}] (≤ 1000), "
                + "chapters?: [{start: number ≥ 0, end?: number ≥ 0, title: string of 1–1000}] (≤ 1000)")
    }
}

@Suite("Envelope payload validation")
struct EnvelopePayloadTests {
    let registry = HandlerRegistry.standard()

    func rejection(_ json: String) -> EnvelopeRejection? {
        if case .failure(let r) = EnvelopeParser.parse(fields: [("job", Array(json.utf8))], schema: registry.schema(for:)) { return r }
        return nil
    }

    @Test func aPayloadOfTheWrongTypeIsRefusedWithTheJobsIdentity() {
        let r = rejection(#"{"id":"s-1","type":"sleep","userId":"u9","payload":{"seconds":"abc"}}"#)
        #expect(r?.reason == "payload.seconds must be a number from 0 to 86400")
        #expect(r?.id == "s-1" && r?.type == "sleep" && r?.userId == "u9")
        let y = rejection(#"{"id":"y-1","type":"youtube.download","payload":{"url":"https://youtu.be/x","subtitles":{"auto":"yes"}}}"#)
        #expect(y?.reason == "payload.subtitles.auto must be true or false" && y?.id == "y-1" && y?.type == "youtube.download")
        #expect(rejection(#"{"id":"n","type":"no.such","payload":{}}"#)?.reason == "unknown job type 'no.such'")
    }

    @Test func wellFormedPayloadsPass() throws {
        let ok = EnvelopeParser.parse(
            fields: [("job", Array(#"{"id":"s-2","type":"sleep","payload":{"seconds":0.5}}"#.utf8))],
            schema: registry.schema(for:))
        #expect(try ok.get().payloadJSON == #"{"seconds":0.5}"#)
    }

    @Test func runAtOutOfRangeNamesTheField() {
        let offset = rejection(#"{"id":"r-1","type":"noop","payload":{},"runAt":"2026-01-01T00:00:00+25:00"}"#)
        #expect(offset?.reason == #"'runAt' is not an RFC 3339 timestamp (offset hour 25 is not 0 to 23): "2026-01-01T00:00:00+25:00""#)
        #expect(offset?.id == "r-1")
        let day = rejection(#"{"id":"r-2","type":"noop","payload":{},"runAt":"2026-02-30T00:00:00Z"}"#)
        #expect(
            day?.reason
                == #"'runAt' is not an RFC 3339 timestamp (day 30 is past the end of February 2026, which has 28 days): "2026-02-30T00:00:00Z""#
        )
    }
}

@Suite("Timestamp ranges")
struct TimestampRangeTests {
    @Test func everyPartIsRangeChecked() {
        #expect(Timestamp.parse("2026-13-01T00:00:00Z") == nil)
        #expect(Timestamp.parse("2026-00-01T00:00:00Z") == nil)
        #expect(Timestamp.parse("2026-01-00T00:00:00Z") == nil)
        #expect(Timestamp.parse("2026-01-32T00:00:00Z") == nil)
        #expect(Timestamp.parse("2026-04-31T00:00:00Z") == nil)
        #expect(Timestamp.parse("2026-04-30T00:00:00Z") != nil)
        #expect(Timestamp.parse("2026-02-30T00:00:00Z") == nil)
        #expect(Timestamp.parse("2025-02-29T00:00:00Z") == nil)
        #expect(Timestamp.parse("2024-02-29T00:00:00Z") == 1_709_164_800_000)
        #expect(Timestamp.parse("2000-02-29T00:00:00Z") != nil, "divisible by 400: a leap year")
        #expect(Timestamp.parse("1900-02-29T00:00:00Z") == nil, "divisible by 100 only: not a leap year")
        #expect(Timestamp.parse("2026-01-01T24:00:00Z") == nil)
        #expect(Timestamp.parse("2026-01-01T23:60:00Z") == nil)
        #expect(Timestamp.parse("2026-01-01T23:59:60Z") == nil, "no leap seconds")
        #expect(Timestamp.parse("2026-01-01T23:59:59Z") == 1_767_311_999_000)
    }

    @Test func offsets() {
        #expect(Timestamp.parse("2026-01-01T00:00:00+25:00") == nil)
        #expect(Timestamp.parse("2026-01-01T00:00:00+24:00") == nil)
        #expect(Timestamp.parse("2026-01-01T00:00:00-12:60") == nil)
        #expect(Timestamp.parse("2026-01-01T00:00:00+23:59") == 1_767_139_260_000)
        #expect(Timestamp.parse("2026-01-01T00:00:00-23:59") == 1_767_311_940_000)
        #expect(Timestamp.parse("2026-01-01T00:00:00-00:00") == 1_767_225_600_000)
        #expect(Timestamp.parse("2026-01-01T00:00:00+0100") == nil)
        #expect(Timestamp.parse("2026-01-01T00:00:00+01:00x") == nil)
    }

    @Test func fractionsOfAnyLength() {
        #expect(Timestamp.parse("2026-01-01T00:00:00.1Z") == 1_767_225_600_100)
        #expect(Timestamp.parse("2026-01-01T00:00:00.123456789Z") == 1_767_225_600_123)
        #expect(Timestamp.parse("2026-01-01t00:00:00.000000000000000000001z") == 1_767_225_600_000)
        #expect(Timestamp.parse("2026-01-01T00:00:00.Z") == nil)
    }

    @Test func reasons() {
        func reason(_ text: String) -> String? {
            if case .failure(let p) = Timestamp.check(text) { return p.description }
            return nil
        }
        #expect(reason("2026-13-01T00:00:00Z") == "month 13 is not 1 to 12")
        #expect(reason("2025-02-29T00:00:00Z") == "day 29 is past the end of February 2025, which has 28 days")
        #expect(reason("2026-01-01T24:00:00Z") == "hour 24 is not 0 to 23")
        #expect(reason("2026-01-01T00:60:00Z") == "minute 60 is not 0 to 59")
        #expect(reason("2026-01-01T00:00:60Z") == "second 60 is not 0 to 59")
        #expect(reason("2026-01-01T00:00:00+25:00") == "offset hour 25 is not 0 to 23")
        #expect(reason("2026-01-01T00:00:00+01:75") == "offset minute 75 is not 0 to 59")
        #expect(reason("tomorrow")?.contains("YYYY-MM-DD") == true)
        #expect(reason("2026-01-01T00:00:00Z") == nil)
    }
}
