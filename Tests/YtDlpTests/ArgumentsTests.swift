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
