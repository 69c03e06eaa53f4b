import Testing

@testable import YtDlp

@Suite("info JSON")
struct InfoTests {
    @Test func aVideo() throws {
        let json = #"""
            {"id":"dQw4w9WgXcQ","title":"Never \"Gonna\"","extractor":"youtube","extractor_key":"Youtube","channel":"Rick",
             "uploader":"RickUploads","upload_date":"20091025","duration":212.0,"is_live":false,"live_status":"not_live",
             "tags":["a","b",3],"thumbnail":"https://i.ytimg.com/x.jpg",
             "formats":[{"format_id":"137","ext":"mp4","vcodec":"avc1.640028","acodec":"none","width":1920,"height":1080.0,"fps":29.97,"tbr":4000.5,"filesize":null,"filesize_approx":123.0},
                        {"format_id":"140","vcodec":"none","acodec":"mp4a.40.2","abr":129.4,"language_preference":10},
                        {"ext":"mp4"}],
             "subtitles":{"en":[{"ext":"vtt","url":"u"},{"ext":"srv3"}]},"automatic_captions":{"de":[{"ext":"vtt"}],"fr":[]}}
            """#
        guard case .video(let v) = try Extraction.parse(Array(json.utf8)) else { Issue.record("not a video"); return }
        #expect(v.id == "dQw4w9WgXcQ" && v.title == "Never \"Gonna\"" && v.extractor == "youtube")
        #expect(v.channelName == "Rick" && v.date == "2009-10-25" && v.duration == 212 && !v.isLiveNow)
        #expect(v.tags == ["a", "b"])
        #expect(v.formats.count == 2, "a format without an id is skipped")
        #expect(v.formats[0].height == 1080 && v.formats[0].filesizeApprox == 123 && v.formats[0].filesize == nil)
        #expect(v.formats[1].hasVideo == false && v.formats[1].hasAudio == true && v.formats[1].languagePreference == 10)
        #expect(v.subtitles["en"]?.count == 2 && v.automaticCaptions.keys.sorted() == ["de"])
    }

    @Test func aVideoOfOneFormatIsDescribedAtTheTopLevel() throws {
        let json = #"""
            {"id":"page","title":"T","extractor":"generic","url":"http://127.0.0.1/v.mp4","format_id":"0","ext":"mp4",
             "protocol":"http","formats":null,"chapters":[{"title":"A","start_time":0,"end_time":15}]}
            """#
        guard case .video(let v) = try Extraction.parse(Array(json.utf8)) else { Issue.record("not a video"); return }
        #expect(v.formats.map(\.id) == ["0"] && v.formats[0].ext == "mp4")
        let listed = #"{"id":"x","url":"http://127.0.0.1/v.mp4","format_id":"0","formats":[{"format_id":"18","ext":"mp4"}]}"#
        guard case .video(let w) = try Extraction.parse(Array(listed.utf8)) else { Issue.record("not a video"); return }
        #expect(w.formats.map(\.id) == ["18"], "a list wins over the top level")
    }

    @Test func aPlaylist() throws {
        let json = #"""
            {"_type":"playlist","id":"PLx","title":"Mix","extractor":"youtube:tab","entries":[
              {"_type":"url","url":"https://www.youtube.com/watch?v=aaaaaaaaaaa","id":"aaaaaaaaaaa","title":"A","duration":61},
              {"_type":"url_transparent","url":"http://127.0.0.1/b.mp4#__youtubedl_smuggle=x","title":"B","timestamp":1672653600},
              {"_type":"url","title":"no url"}]}
            """#
        guard case .playlist(let p) = try Extraction.parse(Array(json.utf8)) else { Issue.record("not a playlist"); return }
        #expect(p.id == "PLx" && p.title == "Mix" && p.extractor == "youtube:tab")
        #expect(p.entries.map(\.url) == ["https://www.youtube.com/watch?v=aaaaaaaaaaa", "http://127.0.0.1/b.mp4#__youtubedl_smuggle=x"])
        #expect(p.entries[1].type == "url_transparent" && p.entries[1].timestamp == 1_672_653_600)
    }

    @Test func manifestsWithoutDurationUseTheirFragments() throws {
        let json =
            #"{"id":"m","formats":[{"format_id":"0","vcodec":"avc1","acodec":"none","tbr":100,"fragments":[{"path":"init"},{"path":"1","duration":2.0},{"path":"2","duration":1.5}]}]}"#
        guard case .video(let v) = try Extraction.parse(Array(json.utf8)) else { Issue.record("not a video"); return }
        #expect(v.duration == 3.5)
        #expect(v.extractor == "generic")
        #expect(v.formats[0].expectedSize(duration: v.duration) == 43_750)
    }

    @Test func datesFromTheTimestamp() throws {
        let json = #"{"id":"t","timestamp":1672653600}"#
        guard case .video(let v) = try Extraction.parse(Array(json.utf8)) else { Issue.record("not a video"); return }
        #expect(v.date == "2023-01-02")
    }

    @Test(arguments: ["", "[]", "{\"title\":\"no id\"}", "not json", "{\"id\":\"\"}"])
    func unreadable(_ text: String) {
        #expect(throws: YtDlpError.self) { try Extraction.parse(Array(text.utf8)) }
    }
}
