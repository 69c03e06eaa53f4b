import Foundation
import Testing

@testable import YtDlp

@Suite("yt-dlp arguments")
struct ArgumentsTests {
    let config = YtDlpConfiguration(executable: "yt-dlp", sleepRequests: 1.5, jsRuntime: "node:/usr/bin/node", environment: [:])

    @Test func theLinkComesLastAfterTheEndOfOptions() {
        let args = YtDlpArguments.extract(url: "https://www.youtube.com/watch?v=dQw4w9WgXcQ", configuration: config)
        #expect(args.first == "--ignore-config")
        #expect(Array(args.suffix(2)) == ["--", "https://www.youtube.com/watch?v=dQw4w9WgXcQ"])
        #expect(args.firstIndex(of: "--") == args.count - 2)
        #expect(args.contains("--flat-playlist") && args.contains("--dump-single-json"))
    }

    @Test func sleepAndJavaScriptRuntimePassThrough() {
        let args = YtDlpArguments.extract(url: "u", configuration: config)
        #expect(args.contains(["--sleep-requests", "1.5"]))
        #expect(args.contains(["--js-runtimes", "node:/usr/bin/node"]))
        let plain = YtDlpArguments.extract(url: "u", configuration: YtDlpConfiguration(environment: [:]))
        #expect(!plain.contains("--sleep-requests") && !plain.contains("--js-runtimes"))
    }

    @Test func downloadsReadTheSavedInfoAndNameFilesAfterTheJob() {
        let plan = FormatPlan(kind: .separate, formats: [FormatInfo(id: "137"), FormatInfo(id: "140")], container: .mp4)
        let request = DownloadRequest(
            infoJSONPath: "/tmp/j%1/dl-j.info.json", plan: plan, directory: "/tmp/j%1", baseName: "dl-j",
            subtitles: SubtitleRequest(languages: ["en", "pt-BR"], automatic: true), thumbnail: true)
        let args = YtDlpArguments.download(request, configuration: config)
        #expect(args.contains(["--load-info-json", "/tmp/j%1/dl-j.info.json"]))
        #expect(args.contains(["--format", "b*[format_id='137'],b*[format_id='140']"]))
        #expect(args.contains(["--output", "/tmp/j%%1/dl-j.%(autonumber)d.%(ext)s"]))
        #expect(args.contains(["--sub-langs", "en,pt-BR"]) && args.contains("--write-auto-subs"))
        #expect(args.contains(["--output", "subtitle:/tmp/j%%1/dl-j.sub.%(ext)s"]))
        #expect(args.contains(["--fixup", "never"]), "yt-dlp never runs ffmpeg: Media does the conversions")
        #expect(!args.contains("--"), "no link: the info JSON is the input")
    }

    @Test func childEnvironmentKeepsNoSecrets() {
        let env = YtDlpConfiguration.childEnvironment(from: [
            "PATH": "/bin", "HOME": "/h", "PLEX_TOKEN": "t", "MEDIANEST_DATABASE_URL": "postgres://u:p@h/d",
            "PYENV_VERSION": "3.11", "HTTPS_PROXY": "http://proxy:3128",
        ])
        #expect(env["PATH"] == "/bin" && env["HOME"] == "/h" && env["PYENV_VERSION"] == "3.11" && env["HTTPS_PROXY"] != nil)
        #expect(env["PLEX_TOKEN"] == nil && env["MEDIANEST_DATABASE_URL"] == nil)
        #expect(env["PYTHONUTF8"] == "1")
    }

    @Test(arguments: ["en", "pt-BR", "zh-Hans", "live_chat"])
    func languages(_ code: String) { #expect(SubtitleRequest.isValidLanguage(code)) }

    @Test(arguments: ["", "en.*", "en,fr", "all,-live_chat", "e n", "en/../x", String(repeating: "a", count: 36)])
    func notLanguages(_ code: String) {
        #expect(!SubtitleRequest.isValidLanguage(code))
    }
}

extension Array where Element == String {
    /// Whether `pair` appears as consecutive elements.
    func contains(_ pair: [String]) -> Bool {
        guard pair.count <= count else { return false }
        return (0...(count - pair.count)).contains { Array(self[$0..<$0 + pair.count]) == pair }
    }
}

@Suite("yt-dlp arguments for cookies, extractor args, plugins and pacing")
struct AccessArgumentsTests {
    let config = YtDlpConfiguration(
        executable: "yt-dlp", environment: [:], cookies: "/etc/c.txt",
        extractorArgs: ["youtube:player_client=default,mweb", "youtubepot-bgutilhttp:base_url=http://127.0.0.1:4416"],
        pluginDirs: ["/var/lib/p1", "/var/lib/p2"], sleepInterval: 10, maxSleepInterval: 20, limitRate: 4_000_000)

    @Test func extractGetsTheCopyExtractorArgsAndPluginsButNoPacing() {
        let args = YtDlpArguments.extract(url: "u", configuration: config, cookies: "/tmp/job/cookies-1.txt")
        #expect(args.contains(["--cookies", "/tmp/job/cookies-1.txt"]))
        #expect(!args.contains("/etc/c.txt"), "yt-dlp never sees the original file: it writes cookies back")
        #expect(args.contains(["--extractor-args", "youtube:player_client=default,mweb"]))
        #expect(args.contains(["--extractor-args", "youtubepot-bgutilhttp:base_url=http://127.0.0.1:4416"]))
        #expect(args.contains(["--plugin-dirs", "/var/lib/p1"]) && args.contains(["--plugin-dirs", "/var/lib/p2"]))
        #expect(!args.contains("--sleep-interval") && !args.contains("--limit-rate"))
        #expect(!args.contains("--no-warnings"), "challenge warnings must reach the classifier")
        #expect(args.firstIndex(of: "--") == args.count - 2)
    }

    @Test func downloadIsPaced() {
        let plan = FormatPlan(kind: .combined, formats: [FormatInfo(id: "18")], container: .mp4)
        let request = DownloadRequest(infoJSONPath: "/tmp/j/i.json", plan: plan, directory: "/tmp/j", baseName: "dl-j")
        let args = YtDlpArguments.download(request, configuration: config, cookies: "/tmp/j/cookies-2.txt")
        #expect(args.contains(["--sleep-interval", "10"]) && args.contains(["--max-sleep-interval", "20"]))
        #expect(args.contains(["--limit-rate", "4000000"]))
        #expect(args.contains(["--cookies", "/tmp/j/cookies-2.txt"]))
        let plain = YtDlpArguments.download(request, configuration: YtDlpConfiguration(environment: [:]))
        for option in ["--cookies", "--extractor-args", "--plugin-dirs", "--sleep-interval", "--max-sleep-interval", "--limit-rate"] {
            #expect(!plain.contains(option))
        }
    }

    @Test func cookiesCopyIsPrivateAndRemoved() throws {
        let dir = NSTemporaryDirectory() + "ytdlp-cookies-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = dir + "/source.txt"
        try "# Netscape HTTP Cookie File\n.x\tTRUE\t/\tFALSE\t0\ta\tb\n".write(toFile: source, atomically: true, encoding: .utf8)
        let copy = try CookiesCopy(source: source, directory: dir)
        var st = stat()
        #expect(stat(copy.path, &st) == 0 && (st.st_mode & 0o777) == 0o600)
        #expect(try String(contentsOfFile: copy.path, encoding: .utf8) == String(contentsOfFile: source, encoding: .utf8))
        copy.remove()
        #expect(!FileManager.default.fileExists(atPath: copy.path))
        #expect(throws: YtDlpError.self) { try CookiesCopy(source: dir + "/missing.txt", directory: dir) }
    }
}
