import Testing

@testable import YtDlp

@Suite("yt-dlp failures: retryable or permanent")
struct ErrorClassifierTests {
    func classify(_ lines: [String], _ termination: ProcessTermination = .exited(1)) -> YtDlpError {
        ErrorClassifier.classify(termination: termination, stderr: lines)
    }

    @Test(arguments: [
        "ERROR: [generic] nothere: Unable to download webpage: HTTP Error 404: File not found (caused by <HTTPError 404: File not found>)",
        "ERROR: unable to download video data: HTTP Error 410: Gone",
        "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video has been removed by the uploader",
        "ERROR: [youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access to this video",
        "ERROR: [youtube] dQw4w9WgXcQ: Join this channel to get access to members-only content like this video",
        "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm your age. This video may be inappropriate for some users.",
        "ERROR: [generic] clip: Unable to download webpage: HTTP Error 401: Unauthorized (caused by <HTTPError 401: Unauthorized>)",
        "ERROR: [youtube] dQw4w9WgXcQ: The uploader has not made this video available in your country",
        "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video is no longer available due to a copyright claim",
        "ERROR: [generic] Unsupported URL: https://example.com/",
        "ERROR: [youtube] dQw4w9WgXcQ: Requested format is not available. Use --list-formats for a list of available formats",
        "ERROR: [youtube:tab] PLxxxx: The playlist does not exist.",
        "ERROR: [youtube] dQw4w9WgXcQ: This live event will begin in 3 hours.",
    ])
    func permanent(_ line: String) {
        let e = classify(["WARNING: something first", line])
        #expect(!e.isRetryable, "\(e)")
        #expect(e.description.contains("yt-dlp said:") || e.description.contains("yt-dlp does not know"))
    }

    @Test(arguments: [
        "ERROR: [generic] x: Unable to download webpage: HTTP Error 503: Service Unavailable",
        "ERROR: unable to download video data: HTTP Error 500: Internal Server Error",
        "ERROR: [youtube] x: HTTP Error 429: Too Many Requests",
        "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you’re not a bot. Use --cookies-from-browser",
        "ERROR: [generic] x: Unable to download webpage: HTTPConnection(host='127.0.0.1', port=18779): Failed to establish a new connection: [Errno 111] Connection refused",
        "ERROR: [download] Got error: 15226 bytes read, 15226 more expected. Giving up after 3 retries",
        "ERROR: [generic] x: Unable to download webpage: The read operation timed out",
        "ERROR: Unable to download webpage: <urlopen error [Errno -3] Temporary failure in name resolution>",
        "ERROR: something nobody has seen before",
    ])
    func retryable(_ line: String) {
        #expect(classify([line]).isRetryable)
    }

    @Test func aSignalIsRetryable() {
        let e = classify([], .signalled(9))
        #expect(e.isRetryable && e.description.contains("signal 9"))
    }

    @Test func the404MessageIsForPeople() {
        let e = classify([
            "ERROR: [generic] nothere: Unable to download webpage: HTTP Error 404: File not found (caused by <HTTPError 404: File not found>)"
        ])
        guard case .notFound(let message, let detail) = e else { Issue.record("\(e)"); return }
        #expect(
            message
                == "The link leads to nothing (HTTP 404); check the URL. yt-dlp said: [generic] nothere: Unable to download webpage: HTTP Error 404: File not found"
        )
        #expect(detail.hasPrefix("ERROR: [generic]"))
    }

    @Test func summaryShortens() {
        let long = "ERROR: " + String(repeating: "x", count: 400)
        #expect(ErrorClassifier.summary(of: long).count == 300)
        #expect(ErrorClassifier.summary(of: "WARNING: a\nERROR: b (caused by c)\nnoise") == "b")
        #expect(ErrorClassifier.summary(of: "") == "")
    }

    @Test func usageErrorsAreNotNetworkErrors() {
        let e = classify(["Usage: yt-dlp [OPTIONS] URL [URL...]", "yt-dlp: error: no such option: --progress-delta"], .exited(2))
        guard case .failed = e else { Issue.record("\(e)"); return }
        #expect(e.description.contains("no such option"))
    }

    // Samples as yt-dlp 2025–2026 prints them.
    static let botCheck = [
        "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies for the authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to manually pass cookies. Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  for tips on effectively exporting YouTube cookies",
        "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you're not a bot. This helps protect our community. Learn more",
    ]
    static let tooMany = [
        "ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: HTTP Error 429: Too Many Requests (caused by <HTTPError 429: Too Many Requests>)",
        "ERROR: unable to download video data: HTTP Error 429: Too Many Requests",
    ]

    @Test(arguments: botCheck)
    func botCheckOpensTheCircuitAndNamesCookies(_ line: String) {
        let e = classify(["WARNING: [youtube] dQw4w9WgXcQ: Some web client https formats have been skipped", line])
        guard case .botCheck = e else { Issue.record("\(e)"); return }
        #expect(e.opensCircuit && e.isRetryable && e.kind == "bot_check")
        #expect(e.description.contains("youtube.cookies") && e.description.contains("PO-token provider"))
        #expect(e.description.contains("youtube.throttle") && e.description.contains("circuit is open"))
    }

    @Test(arguments: tooMany)
    func rateLimitOpensTheCircuit(_ line: String) {
        let e = classify([line])
        guard case .rateLimited = e else { Issue.record("\(e)"); return }
        #expect(e.opensCircuit && e.kind == "rate_limited" && e.description.contains("HTTP 429"))
        #expect(e.description.contains("youtube.throttle"))
    }

    @Test func forbiddenIsItsOwnClass() {
        let e = classify(["ERROR: unable to download video data: HTTP Error 403: Forbidden"])
        guard case .forbidden = e else { Issue.record("\(e)"); return }
        #expect(!e.opensCircuit && e.isRetryable && e.description.contains("HTTP 403"))
    }

    @Test func aFailedChallengeBeforeFormatUnavailableIsTheChallenge() {
        let e = classify([
            "WARNING: [youtube] dQw4w9WgXcQ: n challenge solving failed: Some formats may be missing. Ensure you have a supported JavaScript runtime and challenge solver script distribution installed. Review any warnings presented before this message. For more details, refer to  https://github.com/yt-dlp/yt-dlp/wiki/EJS",
            "ERROR: [youtube] dQw4w9WgXcQ: Requested format is not available. Use --list-formats for a list of available formats",
        ])
        guard case .challenge = e else { Issue.record("\(e)"); return }
        #expect(!e.isRetryable && e.kind == "challenge")
        #expect(e.description.hasPrefix("yt-dlp is too old or lacks its JS runtime (version found: unknown)"))
        #expect(e.detail.contains("n challenge solving failed"))
    }

    @Test func noJavaScriptRuntimeIsTheChallenge() {
        let e = classify([
            "WARNING: [youtube] No supported JavaScript runtime could be found. Only deno is enabled by default; to use another runtime add  --js-runtimes RUNTIME[:PATH]  to your command/config. YouTube extraction without a JS runtime has been deprecated, and some formats may be missing. See  https://github.com/yt-dlp/yt-dlp/wiki/EJS  for details on installing one",
            "ERROR: [youtube] dQw4w9WgXcQ: No video formats found!; please report this issue on  https://github.com/yt-dlp/yt-dlp/issues",
        ])
        guard case .challenge = e else { Issue.record("\(e)"); return }
        let named = YtDlpError.challenge(version: "2025.10.22", detail: e.detail)
        #expect(named.description.contains("version found: 2025.10.22") && named.description.contains("yt-dlp[default]"))
    }

    @Test func aChallengeWarningDoesNotHideAnUnavailableVideo() {
        let e = classify([
            "WARNING: [youtube] x: n challenge solving failed: Some formats may be missing.",
            "ERROR: [youtube] x: Video unavailable. This video has been removed by the uploader",
        ])
        #expect(e.kind == "gone", "\(e)")
    }

    @Test func signInAndAgeNameCookies() {
        for line in [
            "ERROR: [generic] clip: Unable to download webpage: HTTP Error 401: Unauthorized (caused by <HTTPError 401: Unauthorized>)",
            "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm your age. This video may be inappropriate for some users. Use --cookies-from-browser or --cookies for the authentication.",
        ] {
            let e = classify([line])
            #expect(e.kind == "sign_in" && e.description.contains("youtube.cookies") && !e.opensCircuit, "\(e)")
        }
    }

    @Test func privateAndRemovedAreGone() {
        for line in [
            "ERROR: [youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access to this video. Use --cookies-from-browser or --cookies for the authentication.",
            "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video has been removed for violating YouTube's Terms of Service",
            "ERROR: [generic] nothere: Unable to download webpage: HTTP Error 404: Not Found",
        ] {
            #expect(classify([line]).kind == "gone", "\(line)")
        }
        #expect(classify(["ERROR: [youtube] x: Requested format is not available. Use --list-formats"]).kind == "format_unavailable")
        #expect(classify(["ERROR: [generic] x: Unable to download webpage: The read operation timed out"]).kind == "network")
    }
}

@Suite("yt-dlp versions")
struct VersionTests {
    @Test func datesAndChannels() throws {
        let stable = try #require(YtDlpVersion("2026.10.26\n"))
        #expect(stable.channel == "stable" && stable.year == 2026 && stable.month == 10 && stable.day == 26)
        let nightly = try #require(YtDlpVersion("2025.11.12.232958"))
        #expect(nightly.channel == "nightly" && nightly.build == 232958)
        #expect(YtDlpVersion("2025.11.11")! < YtDlpVersion.minimum && !(stable < YtDlpVersion.minimum))
        #expect(YtDlpVersion.minimum < nightly)
        let now = try #require(YtDlpVersion("2026.12.03")?.date)
        #expect(stable.ageDays(now: now) == 38)
        #expect(YtDlpVersion("2026.09.03")!.ageDays(now: now) == 91)
    }

    @Test(arguments: ["", "stable", "2025.13.01", "2025.1", "v2025.11.12", "2025.11.12.x", "1999.01.01", "2025..12"])
    func notVersions(_ text: String) { #expect(YtDlpVersion(text) == nil) }
}
