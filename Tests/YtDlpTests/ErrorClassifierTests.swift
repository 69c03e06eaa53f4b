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
        "ERROR: unable to download video data: HTTP Error 403: Forbidden",
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
}
