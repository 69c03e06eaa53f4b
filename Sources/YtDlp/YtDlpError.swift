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
    /// Network trouble, server errors (5xx), a dropped connection.
    case network(message: String, detail: String)
    /// YouTube's bot check ("Sign in to confirm you're not a bot"): the `youtube` circuit opens.
    case botCheck(detail: String)
    /// HTTP 429: the site rate-limits this server; the `youtube` circuit opens.
    case rateLimited(detail: String)
    /// HTTP 403 on the media: expired or host-bound links, or a missing PO token.
    case forbidden(detail: String)
    /// YouTube's player challenge ("n challenge solving failed", no JavaScript runtime): yt-dlp is
    /// too old or lacks its JS runtime. `version` is the yt-dlp version found, when known.
    case challenge(version: String?, detail: String)
    /// The site wants a signed-in account (HTTP 401, age-restricted videos): cookies would help.
    case signInRequired(message: String, detail: String)
    /// yt-dlp failed in a way this module does not recognise.
    case failed(termination: ProcessTermination, detail: String)
    /// The yt-dlp executable could not be started.
    case executable(String)
    /// yt-dlp said something this module could not read.
    case badOutput(String)

    /// Whether another attempt could succeed.
    public var isRetryable: Bool {
        switch self {
        case .network, .failed, .executable, .badOutput, .botCheck, .rateLimited, .forbidden: return true
        case .invalidURL, .hostNotAllowed, .notFound, .unavailable, .unsupported, .noFormat, .live, .challenge, .signInRequired:
            return false
        }
    }

    /// Whether the failure says YouTube is pushing back on this server (bot check, HTTP 429): the
    /// `youtube` circuit opens for every host and the job waits without using an attempt.
    public var opensCircuit: Bool {
        switch self {
        case .botCheck, .rateLimited: return true
        default: return false
        }
    }

    /// The failure's class, as documented: bot_check, rate_limited, forbidden, challenge,
    /// sign_in, format_unavailable, gone, network, live, unsupported, refused, other.
    public var kind: String {
        switch self {
        case .botCheck: return "bot_check"
        case .rateLimited: return "rate_limited"
        case .forbidden: return "forbidden"
        case .challenge: return "challenge"
        case .signInRequired: return "sign_in"
        case .noFormat: return "format_unavailable"
        case .notFound, .unavailable: return "gone"
        case .network: return "network"
        case .live: return "live"
        case .unsupported: return "unsupported"
        case .invalidURL, .hostNotAllowed: return "refused"
        case .failed, .executable, .badOutput: return "other"
        }
    }

    /// What to configure when YouTube pushes back.
    static let pushBackAdvice =
        "Configure youtube.cookies (cookies of a throwaway account, exported from a private window), "
        + "a PO-token provider (its plugin folder in youtube.plugin_dirs, its settings in youtube.extractor_args), "
        + "or a slower youtube.throttle (sleep_requests, sleep_interval, limit_rate)."

    public var description: String {
        switch self {
        case .botCheck(let detail):
            return "YouTube asks this server to sign in to confirm it is not a bot; YouTube downloads pause on every host "
                + "(the youtube circuit is open) and this download waits. " + Self.pushBackAdvice + Self.quote(detail)
        case .rateLimited(let detail):
            return "YouTube is rate-limiting this server (HTTP 429); YouTube downloads pause on every host "
                + "(the youtube circuit is open) and this download waits. " + Self.pushBackAdvice + Self.quote(detail)
        case .forbidden(let detail):
            return "The site refused the download (HTTP 403). If it keeps happening, update yt-dlp or configure a PO-token "
                + "provider (youtube.plugin_dirs, youtube.extractor_args) or youtube.cookies." + Self.quote(detail)
        case .challenge(let version, let detail):
            return "yt-dlp is too old or lacks its JS runtime (version found: \(version ?? "unknown")): YouTube's player challenge "
                + "could not be solved. Install yt-dlp 2025.11.12 or newer as yt-dlp[default] (pip install -U \"yt-dlp[default]\") "
                + "and a JavaScript runtime (deno, or node or bun with youtube.js_runtime)." + Self.quote(detail)
        case .signInRequired(let message, _): return message
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
        case .botCheck(let d), .rateLimited(let d), .forbidden(let d), .challenge(_, let d), .signInRequired(_, let d): return d
        default: return ""
        }
    }

    /// ` yt-dlp said: "..."` for a message, or nothing when `detail` is empty.
    static func quote(_ detail: String) -> String {
        let line = ErrorClassifier.summary(of: detail)
        return line.isEmpty ? "" : " yt-dlp said: \(line)"
    }
}

/// Maps yt-dlp's exit and stderr to a `YtDlpError`: YouTube's bot check and HTTP 429 (the
/// `youtube` circuit), 403, a failed player challenge (too old a yt-dlp, no JS runtime), sign-in
/// required (401, age-restricted), format unavailable, gone (404, removed, private), network;
/// permanent for what no retry can change, retryable for network trouble, server errors and for
/// anything it does not recognise.
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

        // YouTube pushing back first: the bot check's text also says "use --cookies".
        if has(
            "sign in to confirm you’re not a bot", "sign in to confirm you're not a bot", "confirm you are not a robot",
            "confirm you’re not a bot", "confirm you're not a bot")
        {
            return .botCheck(detail: detail)
        }
        if has("http error 429", "too many requests", "rate-limited", "rate limited") {
            return .rateLimited(detail: detail)
        }
        // A failed challenge is only a warning; the error that follows is "format not available" or none.
        let everything = stderr.joined(separator: "\n").lowercased()
        let challenge = [
            "challenge solving failed", "no supported javascript runtime", "signature extraction failed",
            "nsig extraction failed", "unable to extract nsig", "js challenge", "only images are available",
        ].contains { everything.contains($0) }
        let challengeDetail =
            (stderr.filter { line in
                let l = line.lowercased()
                return l.contains("challenge") || l.contains("javascript runtime") || l.contains("nsig") || l.contains("signature")
            }.suffix(2) + errors.suffix(2)).joined(separator: "\n")
        if challenge,
            errors.isEmpty || has("requested format is not available", "no video formats found", "no formats found", "challenge")
                || httpStatus(in: text) == 403
        {
            return .challenge(version: nil, detail: challengeDetail)
        }
        if let code = httpStatus(in: text), (500...599).contains(code) {
            return .network(
                message: "The site answered with a server error (HTTP \(code)); the download will be tried again.\(said)", detail: detail)
        }
        if let code = httpStatus(in: text), code == 403 {
            return .forbidden(detail: detail)
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
            return .signInRequired(
                message: "The video is age-restricted and needs a signed-in account; configure youtube.cookies "
                    + "with the cookies of an account allowed to watch it (Netscape format).\(said)", detail: detail)
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
        if httpStatus(in: text) == 401
            || has(
                "login required", "requires login", "sign in to view", "this video requires payment", "login to view",
                "use --cookies-from-browser or --cookies", "account cookies")
        {
            return .signInRequired(
                message: "The site asks to sign in for this video; configure youtube.cookies with a signed-in account's "
                    + "cookies (Netscape format).\(said)", detail: detail)
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
