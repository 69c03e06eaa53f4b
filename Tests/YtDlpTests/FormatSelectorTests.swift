import Testing

@testable import YtDlp

@Suite("format selection")
struct FormatSelectorTests {
    // A YouTube-like list: combined 18 (360p), separate video in H.264 and VP9/AV1, audio in AAC and Opus.
    let youtube: [FormatInfo] = [
        FormatInfo(id: "sb0", ext: "mhtml", vcodec: "none", acodec: "none", formatNote: "storyboard"),
        FormatInfo(id: "18", ext: "mp4", vcodec: "avc1.42001E", acodec: "mp4a.40.2", width: 640, height: 360, tbr: 500),
        FormatInfo(id: "140", ext: "m4a", vcodec: "none", acodec: "mp4a.40.2", abr: 129, filesize: 3_000_000),
        FormatInfo(id: "251", ext: "webm", vcodec: "none", acodec: "opus", abr: 135, filesize: 3_100_000),
        FormatInfo(id: "251-drc", ext: "webm", vcodec: "none", acodec: "opus", abr: 140, languagePreference: -1),
        FormatInfo(
            id: "136", ext: "mp4", vcodec: "avc1.4d401f", acodec: "none", width: 1280, height: 720, fps: 30, tbr: 1500, filesize: 20_000_000
        ),
        FormatInfo(id: "247", ext: "webm", vcodec: "vp9", acodec: "none", width: 1280, height: 720, fps: 30, tbr: 1300),
        FormatInfo(
            id: "137", ext: "mp4", vcodec: "avc1.640028", acodec: "none", width: 1920, height: 1080, fps: 30, tbr: 4000,
            filesize: 60_000_000),
        FormatInfo(id: "248", ext: "webm", vcodec: "vp9", acodec: "none", width: 1920, height: 1080, fps: 30, tbr: 2600),
        FormatInfo(id: "399", ext: "mp4", vcodec: "av01.0.08M.08", acodec: "none", width: 1920, height: 1080, fps: 30, tbr: 2100),
        FormatInfo(id: "313", ext: "webm", vcodec: "vp9", acodec: "none", width: 3840, height: 2160, fps: 30, tbr: 18000),
        FormatInfo(id: "drm", ext: "mp4", vcodec: "avc1", acodec: "none", width: 3840, height: 2160, hasDRM: true),
    ]

    func plan(_ q: Quality, _ c: Container, _ formats: [FormatInfo]? = nil) throws -> FormatPlan {
        try FormatSelector.plan(formats: formats ?? youtube, quality: q, container: c)
    }

    @Test func mp4At1080PrefersH264AndAAC() throws {
        let p = try plan(.p1080, .mp4)
        #expect(p.kind == .separate && p.formats.map(\.id) == ["137", "140"])
        #expect(p.selector == "b*[format_id='137'],b*[format_id='140']")
        #expect(p.expectedSize(duration: 100) == 63_000_000)
    }

    @Test func webmTakesVP9AndOpus() throws {
        let p = try plan(.p1080, .webm)
        #expect(p.formats.map(\.id) == ["248", "251"], "the dubbed track (language preference -1) is not chosen")
    }

    @Test func bestTakesTheLargestPicture() throws {
        #expect(try plan(.best, .mkv).formats.first?.id == "313")
        #expect(try plan(.best, .mp4).formats.first?.id == "313", "VP9 goes into mp4 when it is the only 2160p")
        #expect(try plan(.p720, .mp4).formats.map(\.id) == ["136", "140"])
    }

    @Test func aCapBelowEverythingTakesTheSmallest() throws {
        let only1080 = youtube.filter { ["137", "140"].contains($0.id) }
        #expect(try plan(.p360, .mp4, only1080).formats.map(\.id) == ["137", "140"])
    }

    @Test func verticalVideosCountByTheirShortSide() throws {
        let shorts = [
            FormatInfo(id: "v", vcodec: "avc1", acodec: "none", width: 1080, height: 1920),
            FormatInfo(id: "v2", vcodec: "avc1", acodec: "none", width: 720, height: 1280),
            FormatInfo(id: "a", vcodec: "none", acodec: "mp4a.40.2"),
        ]
        #expect(try plan(.p1080, .mp4, shorts).formats.map(\.id) == ["v", "a"])
        #expect(try plan(.p720, .mp4, shorts).formats.map(\.id) == ["v2", "a"])
    }

    @Test func audioQualityGivesM4AOrMP3() throws {
        let m4a = try plan(.audio, .mp4)
        #expect(m4a.kind == .audioOnly && m4a.container == .m4a && m4a.formats.map(\.id) == ["140"])
        let mp3 = try plan(.p1080, .mp3)
        #expect(mp3.container == .mp3 && mp3.formats.count == 1)
        let opus = try plan(.audio, .mkv)
        #expect(opus.container == .m4a)
    }

    @Test func aDirectLinkIsOneCombinedFormat() throws {
        let direct = [FormatInfo(id: "mp4", ext: "mp4")]
        let p = try plan(.p1080, .mp4, direct)
        #expect(p.kind == .combined && p.selector == "b*[format_id='mp4']")
        let audio = try plan(.audio, .mp4, direct)
        #expect(audio.kind == .audioOnly && audio.formats.map(\.id) == ["mp4"])
    }

    @Test func combinedWhenThatIsAllThereIs() throws {
        let p = try plan(.p1080, .mp4, youtube.filter { $0.id == "18" || $0.id == "137" })
        #expect(p.kind == .combined && p.formats.map(\.id) == ["18"], "no audio-only format: take the one with sound")
    }

    @Test func refusals() {
        #expect(throws: YtDlpError.self) { try plan(.best, .webm, [FormatInfo(id: "x", vcodec: "avc1", acodec: "mp4a.40.2")]) }
        #expect(throws: YtDlpError.self) { try plan(.best, .mp4, [FormatInfo(id: "x", vcodec: "avc1", acodec: "none", hasDRM: true)]) }
        #expect(throws: YtDlpError.self) { try plan(.audio, .m4a, [FormatInfo(id: "x", vcodec: "avc1", acodec: "none")]) }
        #expect(throws: YtDlpError.self) { try plan(.best, .mp4, [FormatInfo(id: "bad'],b*[", vcodec: "avc1", acodec: "aac")]) }
    }

    @Test func codecFamilies() {
        #expect(CodecFamily.video("avc1.640028") == .h264 && CodecFamily.video("vp09.00.51.08") == .vp9)
        #expect(CodecFamily.video("av01.0.12M.10") == .av1 && CodecFamily.video("hvc1.2.4.L153") == .hevc)
        #expect(CodecFamily.video("none") == .unknown && CodecFamily.video(nil) == .unknown)
        #expect(CodecFamily.audio("mp4a.40.2") == .aac && CodecFamily.audio("mp4a.40.34") == .mp3 && CodecFamily.audio("opus") == .opus)
    }
}
