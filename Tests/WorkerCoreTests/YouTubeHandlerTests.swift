import Foundation
import JSON
import Testing
import WorkerConfig
import YtDlp

@testable import WorkerCore

@Suite("youtube.download pieces")
struct YouTubeHandlerTests {
    var configuration: WorkerConfiguration {
        var c = WorkerConfiguration()
        c.youtube.allowedHosts = ["127.0.0.1"]
        return c
    }

    func request(_ payload: String, jobId: String = "job-1") throws -> YouTubeRequest {
        try YouTubeRequest(payload: JSONValue.parse(payload)!, jobId: jobId, userId: "u1", configuration: configuration)
    }

    func failure(_ payload: String) -> JobFailure? {
        do { _ = try request(payload); return nil } catch let f as JobFailure { return f } catch { return nil }
    }

    @Test func aPayloadWithDefaults() throws {
        let r = try request(#"{"downloadId":"3F2C1E9A-8B7D-4C6E-9F01-23456789ABCD","url":"https://youtu.be/dQw4w9WgXcQ?t=3"}"#)
        #expect(r.downloadId == "3f2c1e9a-8b7d-4c6e-9f01-23456789abcd")
        #expect(r.quality == .p1080 && r.container == .mp4, "defaults from jobs.yml")
        #expect(r.source.url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ")
        #expect(r.userId == "u1" && r.subtitles == nil && r.playlist == nil)
    }

    @Test func payloadsThatAreRefused() {
        #expect(failure(#"{"downloadId":"nope","url":"https://youtu.be/dQw4w9WgXcQ"}"#)?.message.contains("UUID") == true)
        #expect(failure(#"{"url":"https://youtu.be/dQw4w9WgXcQ","quality":"4k"}"#)?.message.contains("'quality' must be one of") == true)
        #expect(failure(#"{"url":"https://youtu.be/dQw4w9WgXcQ","format":"avi"}"#)?.message.contains("'format' must be one of") == true)
        #expect(failure(#"{"downloadId":null}"#)?.message.contains("needs 'url'") == true)
        #expect(failure(#"{"url":"https://youtu.be/dQw4w9WgXcQ","subtitles":{"languages":["en.*"]}}"#) != nil)
        #expect(failure(#"{"url":"https://youtu.be/dQw4w9WgXcQ","subtitles":"en"}"#) != nil)
        let host = failure(#"{"url":"http://10.0.0.1/admin"}"#)
        #expect(host?.retryable == false && host?.message.contains("not allowed") == true)
    }

    @Test func subtitlesAndPlaylistMembership() throws {
        let r = try request(
            #"{"url":"http://127.0.0.1:8/a.mp4#__youtubedl_smuggle=x","subtitles":{"auto":true,"embed":true},"playlist":{"jobId":"p","downloadId":"d","title":"T","index":2,"count":12},"entry":{"title":"Entry"}}"#
        )
        #expect(r.subtitles == YouTubeRequest.Subtitles(languages: ["en"], automatic: true, embed: true))
        #expect(r.playlist?.index == 2 && r.playlist?.count == 12 && r.entry?.title == "Entry")
        #expect(r.source.url.hasSuffix("#__youtubedl_smuggle=x"), "yt-dlp's fragment survives for playlist entries only")
        let user = try request(#"{"url":"http://127.0.0.1:8/a.mp4#__youtubedl_smuggle=x"}"#)
        #expect(user.source.url == "http://127.0.0.1:8/a.mp4")
    }

    @Test func derivedIDsAreStableUUIDs() {
        let a = DerivedID.uuid("job:abc")
        #expect(a == DerivedID.uuid("job:abc") && a != DerivedID.uuid("job:abd"))
        #expect(UUID(uuidString: a) != nil && a == a.lowercased())
        #expect(Array(a)[14] == "8", "version 8")
        #expect("89ab".contains(Array(a)[19]), "RFC 4122 variant")
        #expect(DerivedID.childJobID(parent: "p-1", index: 3) == "p-1.3")
        let long = String(repeating: "x", count: 128)
        let child = DerivedID.childJobID(parent: long, index: 4999)
        #expect(child.utf8.count <= 128 && JobEnvelope.isValidID(child) && child.hasSuffix(".4999"))
    }

    @Test func nfoDocuments() {
        let episode = NFOWriter.document(
            NFOWriter.Fields(
                title: "A <b>&\"x\"\u{1}", channel: "Chan", id: "dQw4w9WgXcQ", extractor: "youtube", date: "2024-01-31",
                description: "line 1\nline 2", duration: 125, url: "https://www.youtube.com/watch?v=dQw4w9WgXcQ--x", tags: ["t"],
                playlist: "PL", index: 3))
        #expect(episode.contains("<episodedetails>") && episode.contains("</episodedetails>"))
        #expect(episode.contains("<title>A &lt;b&gt;&amp;&quot;x&quot;</title>"), "escaped, control character dropped")
        #expect(episode.contains("<showtitle>Chan</showtitle>") && episode.contains("<aired>2024-01-31</aired>"))
        #expect(episode.contains(#"<uniqueid type="youtube" default="true">dQw4w9WgXcQ</uniqueid>"#))
        #expect(episode.contains("<runtime>2</runtime>") && episode.contains("<episode>3</episode>"))
        #expect(!episode.contains("--x"), "no -- inside the comment")
        let movie = NFOWriter.document(
            NFOWriter.Fields(
                title: "clip", channel: nil, id: "clip", extractor: "generic", date: nil,
                description: nil, duration: nil, url: nil, tags: [], playlist: nil, index: nil))
        #expect(movie.contains("<movie>") && movie.contains(#"<uniqueid type="generic" default="true">clip</uniqueid>"#))
    }

    @Test func theLibraryMoverNeverReplacesAMediaFile() throws {
        let dir = NSTemporaryDirectory() + "/yt-mover-\(UUID().uuidString)"
        let temp = dir + "/temp"
        let library = dir + "/library"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: library, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func make(_ name: String, _ text: String) -> String {
            let path = temp + "/" + name
            FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            return path
        }
        let first = try LibraryMover.place(
            media: .init(source: make("a.mp4", "one"), suffix: ".mp4"),
            sidecars: [.init(source: make("a.nfo", "nfo one"), suffix: ".nfo")],
            folder: library, baseName: "Title [id]")
        #expect(first.paths == [library + "/Title [id].nfo", library + "/Title [id].mp4"])
        let second = try LibraryMover.place(
            media: .init(source: make("b.mp4", "two"), suffix: ".mp4"),
            sidecars: [.init(source: make("b.nfo", "nfo two"), suffix: ".nfo")],
            folder: library, baseName: "Title [id]")
        #expect(second.baseName == "Title [id] (2)")
        #expect(try String(contentsOfFile: library + "/Title [id].mp4", encoding: .utf8) == "one")
        #expect(try String(contentsOfFile: library + "/Title [id] (2).mp4", encoding: .utf8) == "two")
        // Sidecars of a file that is gone are replaced.
        try FileManager.default.removeItem(atPath: library + "/Title [id].mp4")
        let third = try LibraryMover.place(
            media: .init(source: make("c.mp4", "three"), suffix: ".mp4"),
            sidecars: [.init(source: make("c.nfo", "nfo three"), suffix: ".nfo")],
            folder: library, baseName: "Title [id]")
        #expect(third.baseName == "Title [id]")
        #expect(try String(contentsOfFile: library + "/Title [id].nfo", encoding: .utf8) == "nfo three")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp).isEmpty)
    }

    @Test func foldersThatLeadOutOfTheLibraryAreRefused() throws {
        let dir = NSTemporaryDirectory() + "/yt-folders-\(UUID().uuidString)"
        let library = dir + "/library"
        try FileManager.default.createDirectory(atPath: library, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: library + "/Planted", withDestinationPath: dir)
        #expect(throws: JobFailure.self) { try LibraryMover.prepareFolder(library: library, components: ["Planted"]) }
        let made = try LibraryMover.prepareFolder(library: library, components: ["Chan", "Sub"])
        #expect(made.hasSuffix("/library/Chan/Sub"))
    }

    @Test func smallPieces() {
        #expect(PlaylistDownload.commonFolder(["/l/a/x.mp4", "/l/a/b/y.mp4", "/l/a/z.mp4"]) == "/l/a")
        #expect(PlaylistDownload.commonFolder(["/l/a/x.mp4"]) == "/l/a")
        #expect(ByteText.format(512) == "512 B" && ByteText.format(10 * 1024) == "10 KiB" && ByteText.format(1536) == "1.5 KiB")
        #expect(ByteText.format(10 * 1024 * 1024 * 1024) == "10 GiB")
    }
}
