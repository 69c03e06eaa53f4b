import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A yt-dlp of the daemon's own (`youtube.yt_dlp: managed`): one Python venv per version under
/// `<state>/yt-dlp`, the one in use named by the `current` symlink, the one before it by
/// `previous` (kept to fall back to):
///
///     <state>/yt-dlp/
///       current  -> versions/2026.12.1          switched by rename(2), so atomically
///       previous -> versions/2026.11.1
///       versions/2026.12.1/bin/yt-dlp           a venv with yt-dlp[default]
///       versions/.install-<id>/                 a venv being built (removed when it fails)
///       cache/                                  pip's cache
///       .lock                                   one install at a time (flock)
///
/// A new version is installed beside the current one, checked (`bin/yt-dlp --version` runs and
/// prints a version), moved to `versions/<version>`, and only then may `current` be switched.
/// Layer 2: knows nothing of jobs; when to switch is the caller's choice.
public struct ManagedYtDlp: Sendable {
    /// `<state>/yt-dlp`.
    public let root: String

    public init(stateDirectory: String) {
        root = (stateDirectory as NSString).appendingPathComponent("yt-dlp")
    }

    public var versionsDirectory: String { root + "/versions" }
    var currentLink: String { root + "/current" }
    var previousLink: String { root + "/previous" }

    /// Where pip finds yt-dlp, and which releases it may take.
    public struct Source: Sendable, Equatable {
        /// `nightly` lets pip take pre-releases (`--pre`); anything else takes the newest release.
        public var channel: String
        public var indexURL: String?
        public var findLinks: [String]
        public var noIndex: Bool
        /// The Python that creates the venv (`python3`).
        public var python: String

        public init(channel: String, indexURL: String? = nil, findLinks: [String] = [], noIndex: Bool = false, python: String = "python3") {
            self.channel = channel
            self.indexURL = indexURL
            self.findLinks = findLinks
            self.noIndex = noIndex
            self.python = python
        }

        /// `pip install` arguments after `install`: the requirement last.
        public var pipArguments: [String] {
            var args = ["--disable-pip-version-check", "--no-input", "--quiet", "--retries", "2", "--timeout", "20"]
            if channel == "nightly" { args.append("--pre") }
            if noIndex { args.append("--no-index") }
            if let indexURL, !noIndex { args += ["--index-url", indexURL] }
            for link in findLinks { args += ["--find-links", link] }
            args.append("yt-dlp[default]")
            return args
        }
    }

    /// A new version built and checked, not yet in use.
    public struct Prepared: Sendable, Equatable {
        public var version: String
        /// `versions/<version>`.
        public var path: String
    }

    /// What `prepare` found.
    public enum Preparation: Sendable, Equatable {
        /// A new version, ready to switch to.
        case ready(Prepared)
        /// The newest of the channel is the version in use.
        case alreadyCurrent(String)
        /// The newest of the channel is older than the version in use (the channel changed); kept as it is.
        case currentIsNewer(newest: String, current: String)
    }

    // MARK: - Reading the layout

    /// The version `current` names, nil when none is installed.
    public func currentVersion() -> String? { linkTarget(currentLink) }
    /// The version `previous` names, nil when there is none.
    public func previousVersion() -> String? { linkTarget(previousLink) }

    /// The executable a run starts now: `current`'s, or `previous`'s when `current`'s is missing;
    /// nil when neither is installed. A resolved path, so a switch later affects only later runs.
    public func executable() -> String? {
        for version in [currentVersion(), previousVersion()].compactMap({ $0 }) {
            let path = versionsDirectory + "/" + version + "/bin/yt-dlp"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// The installed versions (complete ones), oldest first.
    public func installedVersions() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: versionsDirectory)) ?? []
        return Self.sortedVersions(
            names.filter {
                Self.isVersionName($0) && FileManager.default.fileExists(atPath: versionsDirectory + "/" + $0 + "/" + Self.completeMarker)
            })
    }

    /// Versions in release order (dated versions by date; others by name, before them).
    public static func sortedVersions(_ names: [String]) -> [String] {
        names.sorted { a, b in
            switch (YtDlpVersion(a), YtDlpVersion(b)) {
            case (let x?, let y?): return x == y ? a < b : x < y
            case (nil, _?): return true
            case (_?, nil): return false
            case (nil, nil): return a < b
            }
        }
    }

    /// Whether `new` is a later release than `current` (a version that is not a date counts as newer, so it is tried).
    public static func isNewer(_ new: String, than current: String) -> Bool {
        guard let n = YtDlpVersion(new), let c = YtDlpVersion(current) else { return new != current }
        return n > c
    }

    /// A version as a folder name: 1–64 of 0-9 A-Z a-z . _ -, not starting with a dot.
    public static func isVersionName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && !name.hasPrefix(".")
            && name.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D
            }
    }

    /// Written into a version's folder once it has been checked.
    static let completeMarker = ".medianest-complete"

    // MARK: - Installing

    /// Holds the install lock (`.lock`) until `release()`; nil when another install holds it.
    public final class Lock: Sendable {
        let fd: Int32
        init(fd: Int32) { self.fd = fd }
        public func release() { close(fd) }
    }

    /// Takes the install lock without waiting; nil when another install (a job or `ytdlp install`) holds it.
    public func lock() throws(ManagedYtDlpError) -> Lock? {
        try makeFolders()
        let fd = open(root + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .filesystem("cannot open \(root)/.lock: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return Lock(fd: fd)
    }

    func makeFolders() throws(ManagedYtDlpError) {
        do {
            try FileManager.default.createDirectory(atPath: versionsDirectory, withIntermediateDirectories: true)
        } catch {
            throw .filesystem("cannot create \(versionsDirectory) (is paths.state writable by this user?): \(error.localizedDescription)")
        }
    }

    /// Installs the newest yt-dlp of `source` in a new venv beside the current one and checks it.
    /// Call with the lock held. Nothing in use changes: a failure removes what it built.
    /// - Parameter environment: the children's environment (PATH, HOME, proxies, PIP_* variables).
    public func prepare(
        _ source: Source, environment: [String: String], timeout: Duration = .seconds(900)
    ) async throws(ManagedYtDlpError)
        -> Preparation
    {
        try makeFolders()
        removeLeftovers()
        let staging = versionsDirectory + "/.install-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var keep = false
        defer { if !keep { try? FileManager.default.removeItem(atPath: staging) } }
        var env = environment
        env["PIP_CACHE_DIR"] = root + "/cache"
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = nil
        env["VIRTUAL_ENV"] = nil
        env["PYTHONHOME"] = nil
        env["PYTHONPATH"] = nil

        let venv = try await run(source.python, ["-m", "venv", staging], env, timeout: .seconds(300))
        guard venv.termination == .exited(0) else {
            throw .install("\(source.python) -m venv failed (\(venv.termination)): \(Self.tail(venv)) — is python3-venv installed?")
        }
        let pip = try await run(staging + "/bin/python", ["-m", "pip", "install"] + source.pipArguments, env, timeout: timeout)
        guard pip.termination == .exited(0) else {
            throw .install(
                "pip could not install yt-dlp[default] (\(pip.termination)): \(Self.tail(pip)) — no network? "
                    + "(youtube.update.index_url and find_links name other sources)")
        }
        let newest: String
        do {
            newest = try await smokeCheck(staging)
        } catch .broken(let why) {
            // Name the version pip installed, as its metadata says.
            let query = try? await run(
                staging + "/bin/python", ["-c", "import importlib.metadata as m; print(m.version('yt-dlp'))"], env, timeout: .seconds(60))
            let version = query.map { String(decoding: $0.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            throw .broken(Self.isVersionName(version) ? "yt-dlp \(version): \(why)" : why)
        }
        if let current = currentVersion() {
            if newest == current { return .alreadyCurrent(current) }
            if !Self.isNewer(newest, than: current) { return .currentIsNewer(newest: newest, current: current) }
        }
        let final = versionsDirectory + "/" + newest
        if FileManager.default.fileExists(atPath: final + "/" + Self.completeMarker), (try? await smokeCheck(final)) == newest {
            // Built by an earlier update that could not switch yet.
            return .ready(Prepared(version: newest, path: final))
        }
        try? FileManager.default.removeItem(atPath: final)
        guard rename(staging, final) == 0 else {
            throw .filesystem("cannot move the new venv to \(final): \(String(cString: strerror(errno)))")
        }
        keep = true
        do {
            try Self.relocateScripts(in: final + "/bin", from: staging, to: final)
            let again = try await smokeCheck(final)
            guard again == newest else {
                throw ManagedYtDlpError.broken("the new yt-dlp printed \(again) after the move, \(newest) before")
            }
            guard FileManager.default.createFile(atPath: final + "/" + Self.completeMarker, contents: Data(newest.utf8)) else {
                throw ManagedYtDlpError.filesystem("cannot write \(final)/\(Self.completeMarker)")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: final)
            throw error as? ManagedYtDlpError ?? .filesystem("\(error)")
        }
        return .ready(Prepared(version: newest, path: final))
    }

    /// What `installNow` did.
    public struct Installed: Sendable, Equatable {
        public var version: String
        public var previous: String?
        /// False when the newest of the channel was the version in use already.
        public var switched: Bool
    }

    /// Takes the lock, installs the newest of `source` and switches to it at once: for when no
    /// download can run (the daemon's start with none installed, `medianest-worker ytdlp install`).
    /// Nil when another install holds the lock.
    public func installNow(_ source: Source, environment: [String: String]) async throws(ManagedYtDlpError) -> Installed? {
        guard let lock = try lock() else { return nil }
        defer { lock.release() }
        let before = currentVersion()
        switch try await prepare(source, environment: environment) {
        case .alreadyCurrent(let version), .currentIsNewer(_, let version):
            return Installed(version: version, previous: previousVersion(), switched: false)
        case .ready(let prepared):
            try activate(prepared.version)
            prune()
            return Installed(version: prepared.version, previous: before, switched: true)
        }
    }

    /// Runs `<venv>/bin/yt-dlp --version`: the version it prints, or `.broken` with why not.
    public func smokeCheck(_ venv: String) async throws(ManagedYtDlpError) -> String {
        let result = try await run(venv + "/bin/yt-dlp", ["--version"], YtDlpConfiguration.childEnvironment(), timeout: .seconds(60))
        let text = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let word = text.split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
        guard result.termination == .exited(0) else {
            throw .broken("it does not run: yt-dlp --version ended with \(result.termination): \(Self.tail(result))")
        }
        guard Self.isVersionName(word) else {
            throw .broken("its --version printed no version (\(String(reflecting: String(text.prefix(60)))))")
        }
        return word
    }

    /// Points `current` at `version` (by rename, so a run sees the old or the new one, never
    /// neither) and `previous` at the one it replaces.
    public func activate(_ version: String) throws(ManagedYtDlpError) {
        let old = currentVersion()
        if let old, old != version { try replaceLink(previousLink, with: "versions/" + old) }
        try replaceLink(currentLink, with: "versions/" + version)
    }

    /// Removes every version but `current` and `previous`, and unfinished installs. Call with the lock held.
    /// Returns the versions removed.
    @discardableResult
    public func prune() -> [String] {
        let keep = Set([currentVersion(), previousVersion()].compactMap { $0 })
        var removed: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: versionsDirectory)) ?? [] where !keep.contains(name) {
            if (try? FileManager.default.removeItem(atPath: versionsDirectory + "/" + name)) != nil, !name.hasPrefix(".") {
                removed.append(name)
            }
        }
        return Self.sortedVersions(removed)
    }

    /// Unfinished installs left by a run that was killed (the lock is held, so none is under way).
    func removeLeftovers() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: versionsDirectory)) ?? [] where name.hasPrefix(".install-") {
            try? FileManager.default.removeItem(atPath: versionsDirectory + "/" + name)
        }
    }

    private func linkTarget(_ link: String) -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { return nil }
        let name = (target as NSString).lastPathComponent
        return Self.isVersionName(name) ? name : nil
    }

    private func replaceLink(_ link: String, with target: String) throws(ManagedYtDlpError) {
        let temporary = link + ".new-\(getpid())"
        unlink(temporary)
        guard symlink(target, temporary) == 0 else {
            throw .filesystem("cannot create the link \(temporary): \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, link) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .filesystem("cannot switch \(link): \(reason)")
        }
    }

    /// pip writes the venv's absolute path into its scripts' first lines (`#!<venv>/bin/python`, or
    /// the `exec` line of a long path): after the move, they name the new place.
    static func relocateScripts(in bin: String, from old: String, to new: String) throws(ManagedYtDlpError) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: bin)) ?? []
        for name in names {
            let path = bin + "/" + name
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                attributes[.type] as? FileAttributeType == .typeRegular, (attributes[.size] as? Int ?? 0) < 1 << 20,
                let data = FileManager.default.contents(atPath: path), data.starts(with: Array("#!".utf8))
            else { continue }
            let head = data.prefix(1024)
            guard let text = String(data: head, encoding: .utf8), text.contains(old + "/") else { continue }
            var out = Data(text.replacingOccurrences(of: old + "/", with: new + "/").utf8)
            out.append(data.dropFirst(head.count))
            let mode = (attributes[.posixPermissions] as? Int) ?? 0o755
            let temporary = path + ".relocating"
            guard FileManager.default.createFile(atPath: temporary, contents: out, attributes: [.posixPermissions: mode]),
                rename(temporary, path) == 0
            else { throw .filesystem("cannot rewrite \(path) for the venv's new place") }
        }
    }

    private func run(
        _ executable: String, _ arguments: [String], _ environment: [String: String], timeout: Duration
    )
        async throws(ManagedYtDlpError) -> ProcessResult
    {
        do {
            guard
                let result = try await ChildProcess.run(
                    executable: executable, arguments: arguments, environment: environment, stdout: .collect(limit: 1 << 16),
                    timeout: timeout)
            else {
                throw ManagedYtDlpError.install("\((executable as NSString).lastPathComponent) did not finish within \(timeout)")
            }
            return result
        } catch let error as ManagedYtDlpError {
            throw error
        } catch is CancellationError {
            throw .cancelled
        } catch let failure as SpawnFailure {
            throw .install("cannot run \(executable): \(failure)")
        } catch {
            throw .install("cannot run \(executable): \(error)")
        }
    }

    static func tail(_ result: ProcessResult) -> String {
        let lines = result.stderrLines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.suffix(3)
        return lines.isEmpty ? "no message" : lines.joined(separator: " / ").prefix(600).description
    }
}

/// Why a managed yt-dlp could not be installed or switched. Each says what happened in a sentence.
public enum ManagedYtDlpError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The venv or pip failed (no network, no such package, no python3-venv).
    case install(String)
    /// The new version was installed but does not run.
    case broken(String)
    /// The state folder could not be written.
    case filesystem(String)
    /// The task was cancelled.
    case cancelled

    public var description: String {
        switch self {
        case .install(let text), .broken(let text), .filesystem(let text): return text
        case .cancelled: return "cancelled"
        }
    }
}
