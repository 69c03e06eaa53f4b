import Foundation

/// Every failure of the YtDlp module. `description` is a sentence a user can act on; `detail`
/// carries what yt-dlp said (the last lines of its stderr) for the logs.
public enum YtDlpError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL was refused before any network access (scheme, host, form).
    case invalidURL(String)
    /// The URL's host is neither YouTube nor one of the allowed hosts.
    case hostNotAllowed(host: String)
    /// The page, video or file does not exist (HTTP 404/410, "does not exist").
    case notFound(message: String, detail: String)
    /// The video exists but cannot be had: private, removed, blocked, members-only, age-gated.
    case unavailable(message: String, detail: String)
    /// yt-dlp cannot read this kind of page.
    case unsupported(detail: String)
    /// No format fits the request (or the site lists none).
    case noFormat(String)
    /// Live streams and premieres that have not ended cannot be downloaded.
    case live(String)
    /// Network trouble, server errors (5xx), throttling (429), a dropped connection.
    case network(message: String, detail: String)
    /// yt-dlp failed in a way this module does not recognise.
    case failed(termination: ProcessTermination, detail: String)
    /// The yt-dlp executable could not be started.
    case executable(String)
    /// yt-dlp said something this module could not read.
    case badOutput(String)

    /// Whether another attempt could succeed.
    public var isRetryable: Bool {
        switch self {
        case .network, .failed, .executable, .badOutput: return true
        case .invalidURL, .hostNotAllowed, .notFound, .unavailable, .unsupported, .noFormat, .live: return false
        }
    }

    public var description: String {
        switch self {
        case .invalidURL(let reason): return reason
        case .hostNotAllowed(let host):
            return "Downloads from \(host) are not allowed: only YouTube and the hosts in youtube.allowed_hosts are."
        case .notFound(let message, _), .unavailable(let message, _), .network(let message, _): return message
        case .unsupported(let detail):
            return "yt-dlp does not know how to download from this page; check the link." + Self.quote(detail)
        case .noFormat(let message), .live(let message), .executable(let message), .badOutput(let message): return message
        case .failed(let termination, let detail):
            return "yt-dlp failed (\(termination))." + Self.quote(detail)
        }
    }

    /// yt-dlp's own words, for the logs (empty when there are none).
    public var detail: String {
        switch self {
        case .notFound(_, let d), .unavailable(_, let d), .network(_, let d), .unsupported(let d), .failed(_, let d): return d
        default: return ""
        }
    }

    /// ` yt-dlp said: "..."` for a message, or nothing when `detail` is empty.
    static func quote(_ detail: String) -> String {
        let line = ErrorClassifier.summary(of: detail)
        return line.isEmpty ? "" : " yt-dlp said: \(line)"
    }
}

/// Maps yt-dlp's exit and stderr to a `YtDlpError`: permanent for what no retry can change
/// (unavailable, private, removed, no such format, 404), retryable for network trouble, server
/// errors and throttling, and for anything it does not recognise.
public enum ErrorClassifier {
    /// The error for a run that ended with `termination` after writing `stderr` (its last lines).
    public static func classify(termination: ProcessTermination, stderr: [String]) -> YtDlpError {
        let errors = stderr.filter { $0.hasPrefix("ERROR:") }
        let relevant = errors.isEmpty ? Array(stderr.suffix(5)) : errors
        let detail = relevant.suffix(5).joined(separator: "\n")
        let text = relevant.joined(separator: "\n").lowercased()
        let said = YtDlpError.quote(detail)

        if case .signalled(let signal) = termination {
            return .network(message: "yt-dlp was stopped by signal \(signal) before it finished; it will be tried again.", detail: detail)
        }
        if case .exited(2) = termination, errors.isEmpty {
            return .failed(termination: termination, detail: detail.isEmpty ? "yt-dlp refused its arguments (is it too old?)" : detail)
        }
        func has(_ needles: String...) -> Bool { needles.contains { text.contains($0) } }

        // Throttling and server trouble first: "HTTP Error 503" must not read as a missing page.
        if has("http error 429", "too many requests", "rate-limited", "rate limited") {
            return .network(
                message: "The site is throttling downloads (HTTP 429); the download will be tried again later.\(said)", detail: detail)
        }
        if let code = httpStatus(in: text), (500...599).contains(code) {
            return .network(
                message: "The site answered with a server error (HTTP \(code)); the download will be tried again.\(said)", detail: detail)
        }
        if has("sign in to confirm you’re not a bot", "sign in to confirm you're not a bot", "confirm you are not a robot") {
            return .network(
                message: "YouTube asks to confirm this host is not a bot; the download will be tried again later.\(said)", detail: detail)
        }
        if has("unsupported url") {
            return .unsupported(detail: detail)
        }
        if has("requested format is not available", "no video formats found", "no formats found") {
            return .noFormat("The video offers no format that can be downloaded for this request; try another quality or format.\(said)")
        }
        if has("this live event will begin", "premieres in", "is live now", "live event has not started") {
            return .live("This is a live stream or a premiere that has not ended; download it once it is over.\(said)")
        }
        if has("private video", "this video is private", "video is private") {
            return .unavailable(message: "The video is private; it cannot be downloaded.\(said)", detail: detail)
        }
        if has("members-only", "join this channel", "members only") {
            return .unavailable(message: "The video is for channel members only; it cannot be downloaded.\(said)", detail: detail)
        }
        if has("sign in to confirm your age", "age-restricted", "age restricted", "inappropriate for some users") {
            return .unavailable(
                message: "The video is age-restricted and needs a signed-in account; it cannot be downloaded.\(said)", detail: detail)
        }
        if has(
            "not available in your country", "blocked it in your country", "geo restriction", "geo-restricted",
            "not made this video available in your country")
        {
            return .unavailable(message: "The video is blocked in this server's country.\(said)", detail: detail)
        }
        if has(
            "copyright", "has been removed", "account associated with this video has been terminated", "video has been terminated",
            "no longer available", "video unavailable", "this video is unavailable", "is not available", "been deleted")
        {
            return .unavailable(message: "The video is unavailable (removed, deleted or blocked).\(said)", detail: detail)
        }
        if let code = httpStatus(in: text), code == 404 || code == 410 {
            return .notFound(message: "The link leads to nothing (HTTP \(code)); check the URL.\(said)", detail: detail)
        }
        if has("does not exist", "playlist does not exist", "incomplete youtube id", "invalid video id") {
            return .notFound(message: "The video or playlist does not exist; check the link.\(said)", detail: detail)
        }
        if let code = httpStatus(in: text) {
            return .network(message: "The site refused the download (HTTP \(code)); it will be tried again.\(said)", detail: detail)
        }
        if has(
            "timed out", "timeout", "connection reset", "connection refused", "connection aborted", "remote end closed",
            "incompleteread", "incomplete read", "bytes read", "name resolution", "name or service not known",
            "network is unreachable", "no route to host", "ssl", "eof occurred", "did not get any data",
            "giving up after", "unable to download", "got error", "transporterror", "broken pipe")
        {
            return .network(message: "The download failed on the network; it will be tried again.\(said)", detail: detail)
        }
        return .failed(termination: termination, detail: detail)
    }

    /// The first `HTTP Error NNN` status in lower-cased text.
    static func httpStatus(in text: String) -> Int? {
        guard let range = text.range(of: "http error ") else { return nil }
        let digits = text[range.upperBound...].prefix(3)
        guard digits.count == 3, digits.allSatisfy(\.isNumber) else { return nil }
        return Int(digits)
    }

    /// The most telling line of yt-dlp's output, shortened: the last `ERROR:` line without its
    /// prefix and without the "(caused by ...)" tail, at most 300 characters.
    public static func summary(of detail: String) -> String {
        let lines = detail.split(separator: "\n").map(String.init)
        guard var line = lines.last(where: { $0.hasPrefix("ERROR:") }) ?? lines.last else { return "" }
        if line.hasPrefix("ERROR:") { line = String(line.dropFirst(6)) }
        if let caused = line.range(of: " (caused by ") { line = String(line[..<caused.lowerBound]) }
        line = line.trimmingCharacters(in: .whitespaces)
        if line.count > 300 { line = String(line.prefix(299)) + "…" }
        return line
    }
}
