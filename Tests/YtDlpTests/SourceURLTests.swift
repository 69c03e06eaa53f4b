import Testing

@testable import YtDlp

@Suite("links: validation and YouTube normalisation")
struct SourceURLTests {
    func parse(_ s: String, allowed: [String] = [], smuggle: Bool = false) throws -> SourceURL {
        try SourceURL.parse(s, allowedHosts: allowed, keepSmuggledFragment: smuggle)
    }

    func refusal(_ s: String, allowed: [String] = []) -> YtDlpError? {
        do { _ = try parse(s, allowed: allowed); return nil } catch let e as YtDlpError { return e } catch { return nil }
    }

    @Test(arguments: [
        "https://youtu.be/dQw4w9WgXcQ",
        "https://youtu.be/dQw4w9WgXcQ?t=42",
        "https://youtu.be/dQw4w9WgXcQ?si=AbCdEf123",
        "http://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://youtube.com/watch?v=dQw4w9WgXcQ&t=1m30s",
        "https://m.youtube.com/watch?v=dQw4w9WgXcQ&feature=share",
        "https://music.youtube.com/watch?v=dQw4w9WgXcQ&si=x",
        "https://www.youtube.com/shorts/dQw4w9WgXcQ?feature=share",
        "https://www.youtube.com/live/dQw4w9WgXcQ?si=abc",
        "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?start=10",
        "https://www.youtube.com/watch?feature=youtu.be&v=dQw4w9WgXcQ&utm_source=x&pp=ygU",
        "https://WWW.YouTube.COM./watch?v=dQw4w9WgXcQ#t=30",
        "  https://youtu.be/dQw4w9WgXcQ  ",
    ])
    func videoFormsBecomeOneCanonicalLink(_ link: String) throws {
        let u = try parse(link)
        #expect(u.url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ")
        #expect(u.kind == .video(id: "dQw4w9WgXcQ"))
        #expect(u.isYouTube)
    }

    @Test func aWatchLinkInAPlaylistIsTheVideo() throws {
        let u = try parse("https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PLbpi6ZahtOH6Blw3RGYpWkSByi_T7Rygb&index=3")
        #expect(u.kind == .video(id: "dQw4w9WgXcQ"))
    }

    @Test(arguments: [
        ("https://www.youtube.com/playlist?list=PLbpi6ZahtOH6Blw3RGYpWkSByi_T7Rygb&si=xyz", "PLbpi6ZahtOH6Blw3RGYpWkSByi_T7Rygb"),
        ("https://music.youtube.com/playlist?list=OLAK5uy_kX9c2Mz8n5c5fO5ZBqp7i2R9lP4RKaZ8M", "OLAK5uy_kX9c2Mz8n5c5fO5ZBqp7i2R9lP4RKaZ8M"),
        ("https://m.youtube.com/watch?list=UUuAXFkgsw1L7xaCfnd5JJOw", "UUuAXFkgsw1L7xaCfnd5JJOw"),
    ])
    func playlistsKeepOnlyTheirId(_ link: String, _ id: String) throws {
        let u = try parse(link)
        #expect(u.url == "https://www.youtube.com/playlist?list=\(id)")
        #expect(u.kind == .playlist(id: id))
    }

    @Test func badIdsAndOtherPagesAreRefused() {
        #expect(refusal("https://youtu.be/short")?.description.contains("not a YouTube video id") == true)
        #expect(refusal("https://www.youtube.com/watch?v=dQw4w9WgXcQ!")?.description.contains("not a YouTube video id") == true)
        #expect(refusal("https://www.youtube.com/@somechannel")?.description.contains("neither a video nor a playlist") == true)
        #expect(refusal("https://www.youtube.com/results?search_query=x") != nil)
        #expect(refusal("https://www.youtube.com/playlist?list=a b") != nil)
        #expect(refusal("https://www.youtube.com/watch") != nil)
        #expect(refusal("https://www.youtube.com/playlist?list=PL%27%3B") != nil)
    }

    @Test func onlyHttpAndHttps() {
        #expect(refusal("file:///etc/passwd")?.description.contains("Only http:// and https://") == true)
        #expect(refusal("ftp://127.0.0.1/x.mp4", allowed: ["127.0.0.1"])?.description.contains("not ftp") == true)
        #expect(refusal("javascript:alert(1)") != nil)
        #expect(refusal("youtube.com/watch?v=dQw4w9WgXcQ") != nil)
        #expect(refusal("") != nil)
        #expect(refusal("http:/127.0.0.1/x", allowed: ["127.0.0.1"]) != nil)
    }

    @Test(arguments: ["-o/tmp/x", "--exec=rm -rf /", "-https://youtu.be/dQw4w9WgXcQ"])
    func aLinkThatLooksLikeAnOptionIsRefused(_ link: String) {
        #expect(refusal(link)?.isRetryable == false)
    }

    @Test func credentialsSpacesAndControlCharactersAreRefused() {
        let e = refusal("http://user:secret@127.0.0.1/x.mp4", allowed: ["127.0.0.1"])
        #expect(e?.description.contains("user name or password") == true)
        #expect(e?.description.contains("secret") == false)
        #expect(refusal("http://127.0.0.1/a b.mp4", allowed: ["127.0.0.1"]) != nil)
        #expect(refusal("http://127.0.0.1/a\u{0}b", allowed: ["127.0.0.1"]) != nil)
        #expect(refusal("http://127.0.0.1/a\nb", allowed: ["127.0.0.1"]) != nil)
    }

    @Test func otherHostsMustBeAllowed() throws {
        let e = refusal("https://vimeo.com/12345")
        #expect(e == .hostNotAllowed(host: "vimeo.com"))
        #expect(e?.isRetryable == false)
        #expect(refusal("https://evil.youtube.com.example/watch?v=dQw4w9WgXcQ") != nil)
        #expect(refusal("http://127.0.0.2:8080/x.mp4", allowed: ["127.0.0.1"]) == .hostNotAllowed(host: "127.0.0.2"))
        let u = try parse("HTTP://Media.Example.COM:8443/v/clip.mp4?id=7&utm_source=news&fbclid=abc#frag", allowed: ["media.example.com"])
        #expect(u.url == "http://media.example.com:8443/v/clip.mp4?id=7")
        #expect(u.kind == .page)
        #expect(u.host == "media.example.com")
        let v6 = try parse("http://[::1]:9000/a.mp4", allowed: ["[::1]"])
        #expect(v6.url == "http://[::1]:9000/a.mp4")
        #expect(refusal("http://127.0.0.1:99999/a.mp4", allowed: ["127.0.0.1"]) != nil)
    }

    @Test func ytDlpsOwnFragmentIsKeptOnlyWhenAsked() throws {
        let link = "http://127.0.0.1:8000/a.mp4#__youtubedl_smuggle=%7B%22force_videoid%22%3A+%22x%22%7D"
        #expect(try parse(link, allowed: ["127.0.0.1"]).url == "http://127.0.0.1:8000/a.mp4")
        #expect(try parse(link, allowed: ["127.0.0.1"], smuggle: true).url == link)
        #expect(try parse("http://127.0.0.1:8000/a.mp4#other", allowed: ["127.0.0.1"], smuggle: true).url == "http://127.0.0.1:8000/a.mp4")
    }
}
