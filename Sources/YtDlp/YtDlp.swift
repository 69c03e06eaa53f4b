// YtDlp: runs yt-dlp as a child process (layer 2; knows nothing of jobs).
import Foundation
import Synchronization

/// How yt-dlp is run.
public struct YtDlpConfiguration: Sendable, Equatable {
    /// The executable: a name looked up in `PATH` or a path (`youtube.yt_dlp`).
    public var executable: String
    /// Seconds between yt-dlp's metadata requests (`--sleep-requests`), when set.
    public var sleepRequests: Double?
    /// JavaScript runtime for YouTube's player (`--js-runtimes`, e.g. `deno` or `node:/usr/bin/node`), when set.
    public var jsRuntime: String?
    /// Network timeout per request, in seconds (`--socket-timeout`).
    public var socketTimeout: Double
    /// yt-dlp's own retries of a request and of a fragment before it gives up (the job then retries).
    public var retries: Int
    /// Time between SIGTERM and SIGKILL when a run is cancelled.
    public var killGrace: Duration
    /// The child's environment.
    public var environment: [String: String]
    /// A Netscape cookies file (`youtube.cookies`). yt-dlp writes cookies back, so each run gets a
    /// private copy (mode 0600) in its scratch folder, deleted when the run ends; this file is only read.
    public var cookies: String?
    /// `--extractor-args` values (`youtube:player_client=default,mweb`), one per extractor.
    public var extractorArgs: [String]
    /// `--plugin-dirs` folders (a PO-token provider, say).
    public var pluginDirs: [String]
    /// Pause before each download (`--sleep-interval`), and the longest of a random pause (`--max-sleep-interval`).
    public var sleepInterval: Double?
    public var maxSleepInterval: Double?
    /// Bytes per second (`--limit-rate`).
    public var limitRate: Int64?
    /// Folder for a run's private files (the cookies copy); the system's temporary folder when nil.
    public var scratchDirectory: String?

    public init(
        executable: String = "yt-dlp", sleepRequests: Double? = nil, jsRuntime: String? = nil,
        socketTimeout: Double = 30, retries: Int = 3, killGrace: Duration = .seconds(1),
        environment: [String: String] = YtDlpConfiguration.childEnvironment(),
        cookies: String? = nil, extractorArgs: [String] = [], pluginDirs: [String] = [],
        sleepInterval: Double? = nil, maxSleepInterval: Double? = nil, limitRate: Int64? = nil,
        scratchDirectory: String? = nil
    ) {
        self.executable = executable
        self.sleepRequests = sleepRequests
        self.jsRuntime = jsRuntime
        self.cookies = cookies
        self.extractorArgs = extractorArgs
        self.pluginDirs = pluginDirs
        self.sleepInterval = sleepInterval
        self.maxSleepInterval = maxSleepInterval
        self.limitRate = limitRate
        self.scratchDirectory = scratchDirectory
        self.socketTimeout = socketTimeout
        self.retries = retries
        self.killGrace = killGrace
        self.environment = environment
    }

    /// Variables passed on to yt-dlp from `base`: what it needs to run (PATH, HOME, locale, proxies,
    /// CA bundles, Python and pyenv settings), and nothing else, so the daemon's secrets stay in the
    /// daemon. Output is forced to UTF-8 and unbuffered.
    public static func childEnvironment(from base: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        let names: Set<String> = [
            "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
            "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
            "http_proxy", "https_proxy", "no_proxy", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
            "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
        ]
        var env = base.filter { names.contains($0.key) || $0.key.hasPrefix("PYENV_") }
        env["PYTHONUTF8"] = "1"
        env["PYTHONIOENCODING"] = "utf-8"
        env["PYTHONUNBUFFERED"] = "1"
        if env["PATH"] == nil { env["PATH"] = "/usr/local/bin:/usr/bin:/bin" }
        return env
    }
}

/// What to download with `YtDlp.download`.
public struct DownloadRequest: Sendable, Equatable {
    /// The info JSON to download from (`--load-info-json`): yt-dlp does not extract again.
    public var infoJSONPath: String
    /// The formats, from `FormatSelector`.
    public var plan: FormatPlan
    /// Folder for every file of the download.
    public var directory: String
    /// File names start with this (made from the job id, never from the video): formats become
    /// `<base>.<n>.<ext>`, subtitles `<base>.sub.<lang>.<ext>`, the thumbnail `<base>.thumb.<ext>`.
    public var baseName: String
    /// Subtitles to fetch, when asked.
    public var subtitles: SubtitleRequest?
    /// Fetch the site's thumbnail too.
    public var thumbnail: Bool

    public init(
        infoJSONPath: String, plan: FormatPlan, directory: String, baseName: String,
        subtitles: SubtitleRequest? = nil, thumbnail: Bool = false
    ) {
        self.infoJSONPath = infoJSONPath
        self.plan = plan
        self.directory = directory
        self.baseName = baseName
        self.subtitles = subtitles
        self.thumbnail = thumbnail
    }
}

/// Subtitles a download asks for.
public struct SubtitleRequest: Sendable, Equatable {
    /// Language codes (`en`, `pt-BR`, ...), checked: letters, digits and `-` only.
    public var languages: [String]
    /// Automatic captions too.
    public var automatic: Bool

    public init(languages: [String], automatic: Bool) {
        self.languages = languages
        self.automatic = automatic
    }

    /// Whether `code` is a language code this module passes on (1–35 of letters, digits, `-`, `_`).
    public static func isValidLanguage(_ code: String) -> Bool {
        (1...35).contains(code.utf8.count)
            && code.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
            }
    }
}

/// The files a download left in its folder.
public struct DownloadedFiles: Sendable, Equatable {
    /// One file per format, in the plan's order.
    public var media: [String]
    /// Subtitle files with their language.
    public var subtitles: [(language: String, path: String)]
    /// The site's thumbnail, when asked for and offered.
    public var thumbnail: String?

    public static func == (a: DownloadedFiles, b: DownloadedFiles) -> Bool {
        a.media == b.media && a.thumbnail == b.thumbnail
            && a.subtitles.map(\.language) == b.subtitles.map(\.language) && a.subtitles.map(\.path) == b.subtitles.map(\.path)
    }
}

/// yt-dlp's argument arrays. User input only ever appears as the value after `--` (the URL),
/// never where yt-dlp would read it as an option.
public enum YtDlpArguments {
    /// Options every run gets. `cookies` is the run's private copy of the cookies file.
    static func common(_ c: YtDlpConfiguration, cookies: String?) -> [String] {
        var args = [
            "--ignore-config", "--no-color", "--socket-timeout", format(c.socketTimeout),
            "--retries", String(c.retries), "--fragment-retries", String(c.retries),
            "--extractor-retries", String(c.retries), "--no-mtime",
        ]
        if let sleep = c.sleepRequests, sleep > 0 { args += ["--sleep-requests", format(sleep)] }
        if let runtime = c.jsRuntime, !runtime.isEmpty { args += ["--js-runtimes", runtime] }
        if let cookies { args += ["--cookies", cookies] }
        for value in c.extractorArgs { args += ["--extractor-args", value] }
        for folder in c.pluginDirs { args += ["--plugin-dirs", folder] }
        return args
    }

    /// Describes a link: a video in full, a playlist as a flat list of entries. yt-dlp's warnings
    /// stay on (stderr): a failed challenge shows only as a warning before "format not available".
    public static func extract(url: String, configuration c: YtDlpConfiguration, cookies: String? = nil) -> [String] {
        common(c, cookies: cookies) + ["--dump-single-json", "--flat-playlist", "--ignore-no-formats-error", "--", url]
    }

    /// Downloads the plan's formats from a saved info JSON, one file per format, with progress and
    /// finished-file lines on stdout; paced by `sleep_interval` and `limit_rate`.
    public static func download(_ r: DownloadRequest, configuration c: YtDlpConfiguration, cookies: String? = nil) -> [String] {
        // yt-dlp reads `%` in an output template as a field: a literal one is written `%%`.
        let base = (r.directory as NSString).appendingPathComponent(r.baseName).replacingOccurrences(of: "%", with: "%%")
        var pacing: [String] = []
        if let sleep = c.sleepInterval, sleep > 0 {
            pacing += ["--sleep-interval", format(sleep)]
            if let most = c.maxSleepInterval, most > sleep { pacing += ["--max-sleep-interval", format(most)] }
        }
        if let rate = c.limitRate, rate > 0 { pacing += ["--limit-rate", String(rate)] }
        var args =
            common(c, cookies: cookies) + pacing + [
                "--load-info-json", r.infoJSONPath,
                "--format", r.plan.selector,
                "--output", base + ".%(autonumber)d.%(ext)s",
                "--quiet", "--no-warnings", "--progress", "--newline", "--progress-delta", "0.5",
                "--progress-template", OutputLine.progressTemplate,
                "--no-simulate", "--print", OutputLine.movedTemplate,
                "--fixup", "never", "--no-embed-subs", "--no-embed-thumbnail", "--no-embed-metadata",
                "--no-write-info-json", "--no-write-description", "--no-playlist",
            ]
        if let subtitles = r.subtitles, !subtitles.languages.isEmpty {
            args += [
                "--write-subs", "--sub-langs", subtitles.languages.joined(separator: ","),
                "--sub-format", "vtt/srt/ass/best", "--output", "subtitle:" + base + ".sub.%(ext)s",
            ]
            if subtitles.automatic { args.append("--write-auto-subs") }
        }
        if r.thumbnail {
            args += ["--write-thumbnail", "--output", "thumbnail:" + base + ".thumb.%(ext)s"]
        }
        return args
    }

    static func format(_ d: Double) -> String {
        d == d.rounded() ? String(Int(d)) : String(d)
    }
}

/// The yt-dlp client: describes links and downloads formats, each run a child process.
public struct YtDlp: Sendable {
    public var configuration: YtDlpConfiguration

    /// Largest info JSON read (a YouTube video's is about 1 MB; a long playlist's more).
    public static let infoLimit = 64 << 20

    public init(configuration: YtDlpConfiguration) {
        self.configuration = configuration
    }

    /// Describes `url` (a `SourceURL`'s canonical link): the info JSON as yt-dlp wrote it, and its
    /// reading. `started` is called with the child's pid once it runs.
    ///
    /// - Throws: `YtDlpError` (classified from yt-dlp's exit and stderr), or `CancellationError`.
    public func extract(url: String, started: (@Sendable (Int32) -> Void)? = nil) async throws -> (json: [UInt8], extraction: Extraction) {
        let result = try await run(
            { YtDlpArguments.extract(url: url, configuration: configuration, cookies: $0) }, stdout: .collect(limit: Self.infoLimit),
            started: started)
        guard result.termination == .exited(0), !result.stdout.isEmpty else {
            throw await classified(result)
        }
        if result.stdoutTruncated {
            throw YtDlpError.badOutput("yt-dlp's description of this link is larger than \(Self.infoLimit >> 20) MiB; it cannot be used.")
        }
        var json = result.stdout
        while let last = json.last, last == 0x0A || last == 0x0D || last == 0x20 { json.removeLast() }
        return (json, try Extraction.parse(json))
    }

    /// Downloads a request's formats. `progress` is called on the reading thread for every report.
    ///
    /// - Throws: `YtDlpError`, or `CancellationError` (yt-dlp has then been stopped).
    public func download(
        _ request: DownloadRequest, progress: @escaping @Sendable (DownloadProgress) -> Void
    ) async throws -> DownloadedFiles {
        let moved = MovedFiles()
        let result = try await run(
            { YtDlpArguments.download(request, configuration: configuration, cookies: $0) },
            stdout: .lines({ line in
                switch OutputLine.parse(line) {
                case .progress(let p)?: progress(p)
                case .moved(_, let path)?: moved.add(path)
                case nil: break
                }
            }))
        guard result.termination == .exited(0) else {
            throw await classified(result)
        }
        let base = (request.directory as NSString).appendingPathComponent(request.baseName)
        var media = moved.all.filter { $0.hasPrefix(base + ".") && !$0.hasPrefix(base + ".sub.") && !$0.hasPrefix(base + ".thumb.") }
        if media.count < request.plan.formats.count {
            // Older yt-dlp builds print nothing for a format already on disk: look for the files.
            let names = (try? FileManager.default.contentsOfDirectory(atPath: request.directory)) ?? []
            media = (1...request.plan.formats.count).compactMap { n in
                names.filter { $0.hasPrefix(request.baseName + ".\(n).") && !$0.hasSuffix(".part") && !$0.hasSuffix(".ytdl") }
                    .sorted().first.map { (request.directory as NSString).appendingPathComponent($0) }
            }
        }
        guard media.count == request.plan.formats.count else {
            throw YtDlpError.badOutput("yt-dlp finished without leaving the downloaded file; the download will be tried again.")
        }
        return DownloadedFiles(
            media: media, subtitles: Self.subtitleFiles(in: request.directory, baseName: request.baseName),
            thumbnail: Self.thumbnailFile(in: request.directory, baseName: request.baseName))
    }

    /// The error of a failed run; a failed challenge names the yt-dlp version found.
    func classified(_ result: ProcessResult) async -> YtDlpError {
        let error = ErrorClassifier.classify(termination: result.termination, stderr: result.stderrLines)
        guard case .challenge(_, let detail) = error else { return error }
        return .challenge(version: await version(), detail: detail)
    }

    /// `yt-dlp --version`'s answer (its first line, at most 40 characters), or nil when it gives none in 10 s.
    public func version() async -> String? {
        let probe = try? await ChildProcess.run(
            executable: configuration.executable, arguments: ["--version"], environment: configuration.environment,
            stdout: .collect(limit: 4096), killGrace: configuration.killGrace, timeout: .seconds(10))
        guard let result = probe ?? nil, result.termination == .exited(0) else { return nil }
        let line = String(decoding: result.stdout, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty ? nil : String(trimmed.prefix(40))
    }

    /// `<base>.sub.<lang>.<ext>` files, by language.
    static func subtitleFiles(in directory: String, baseName: String) -> [(language: String, path: String)] {
        let prefix = baseName + ".sub."
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        return names.compactMap { name in
            guard name.hasPrefix(prefix), !name.hasSuffix(".part") else { return nil }
            let rest = name.dropFirst(prefix.count)
            guard let dot = rest.lastIndex(of: ".") else { return nil }
            let language = String(rest[..<dot])
            guard SubtitleRequest.isValidLanguage(language) else { return nil }
            return (language, (directory as NSString).appendingPathComponent(name))
        }
    }

    static func thumbnailFile(in directory: String, baseName: String) -> String? {
        let prefix = baseName + ".thumb."
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix(prefix) && !$0.hasSuffix(".part") }.sorted().first
            .map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Runs yt-dlp with the arguments `build` makes from the run's private cookies copy (nil without cookies).
    private func run(
        _ build: (String?) -> [String], stdout: StdoutHandling, started: (@Sendable (Int32) -> Void)? = nil
    ) async throws -> ProcessResult {
        guard let source = configuration.cookies else { return try await run(build(nil), stdout: stdout, started: started) }
        let copy = try CookiesCopy(source: source, directory: configuration.scratchDirectory ?? NSTemporaryDirectory())
        defer { copy.remove() }
        return try await run(build(copy.path), stdout: stdout, started: started)
    }

    private func run(
        _ arguments: [String], stdout: StdoutHandling, started: (@Sendable (Int32) -> Void)? = nil
    ) async throws -> ProcessResult {
        do {
            return try await ChildProcess.run(
                executable: configuration.executable, arguments: arguments,
                environment: configuration.environment, stdout: stdout,
                killGrace: configuration.killGrace, started: started)
        } catch let failure as SpawnFailure {
            switch failure {
            case .notFound(let path):
                throw YtDlpError.executable("yt-dlp was not found at '\(path)'; install it or set youtube.yt_dlp to its path.")
            case .notExecutable(let path):
                throw YtDlpError.executable("'\(path)' cannot be run; check youtube.yt_dlp and the file's permissions.")
            case .system(let call, let code):
                throw YtDlpError.executable("yt-dlp could not be started (\(call): \(String(cString: strerror(code)))).")
            }
        }
    }
}

/// Paths reported by `--print after_move`, collected on the reading thread.
private final class MovedFiles: Sendable {
    private let paths = Mutex<[String]>([])
    func add(_ path: String) { paths.withLock { $0.append(path) } }
    var all: [String] { paths.withLock { $0 } }
}

/// A run's private copy of the cookies file: created 0600 in the run's folder under a random name,
/// removed when the run ends. Errors never name the original file.
struct CookiesCopy {
    let path: String

    init(source: String, directory: String) throws(YtDlpError) {
        let name = "cookies-\(UInt64.random(in: 0...UInt64.max)).txt"
        path = (directory as NSString).appendingPathComponent(name)
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else {
            throw .executable(
                "The cookies file (youtube.cookies) cannot be read (\(String(cString: strerror(errno)))); check it and its permissions.")
        }
        defer { close(input) }
        let output = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard output >= 0 else {
            throw .executable("The run's copy of the cookies cannot be written (\(String(cString: strerror(errno)))); check paths.temp.")
        }
        var failed = false
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                failed = true
                break
            }
            var offset = 0
            while offset < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + offset, n - offset) }
                if w < 0 {
                    if errno == EINTR { continue }
                    failed = true
                    break
                }
                offset += w
            }
            if failed { break }
        }
        fchmod(output, 0o600)
        close(output)
        if failed {
            unlink(path)
            throw .executable("The cookies could not be copied for this run; check youtube.cookies and paths.temp (full disk?).")
        }
    }

    func remove() { unlink(path) }
}
