import Foundation
import Testing

@testable import YtDlp

@Suite("managed yt-dlp: layout, versions, switching")
struct ManagedYtDlpTests {
    func scratch() throws -> String {
        let path = NSTemporaryDirectory() + "managed-ytdlp-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A fake installed version: `versions/<v>/bin/yt-dlp` printing the version, marked complete.
    func fakeVersion(_ managed: ManagedYtDlp, _ version: String) throws {
        let bin = managed.versionsDirectory + "/" + version + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        FileManager.default.createFile(
            atPath: bin + "/yt-dlp", contents: Data("#!/bin/sh\necho \(version)\n".utf8), attributes: [.posixPermissions: 0o755])
        FileManager.default.createFile(
            atPath: managed.versionsDirectory + "/" + version + "/" + ManagedYtDlp.completeMarker, contents: Data())
    }

    @Test func versionsSortByReleaseAndNightliesCountAsLater() {
        #expect(
            ManagedYtDlp.sortedVersions(["2026.12.1", "2025.11.12.232958", "2026.2.3", "2025.11.12", "custom"])
                == ["custom", "2025.11.12", "2025.11.12.232958", "2026.2.3", "2026.12.1"])
        #expect(ManagedYtDlp.isNewer("2026.12.1", than: "2026.11.1"))
        #expect(!ManagedYtDlp.isNewer("2026.11.1", than: "2026.12.1"))
        #expect(ManagedYtDlp.isNewer("2026.12.1.101010", than: "2026.12.1"))
        #expect(!ManagedYtDlp.isNewer("2026.12.1", than: "2026.12.1"))
        #expect(ManagedYtDlp.isNewer("local-build", than: "2026.12.1"), "an undated version is tried")
    }

    @Test func versionNamesAreSafeFolderNames() {
        #expect(ManagedYtDlp.isVersionName("2026.12.1") && ManagedYtDlp.isVersionName("2026.12.1.232958"))
        for bad in ["", ".install-1", "../x", "a/b", "1 2", String(repeating: "9", count: 65)] {
            #expect(!ManagedYtDlp.isVersionName(bad), "\(bad)")
        }
    }

    @Test func pipArgumentsFollowTheChannelAndSource() {
        let stable = ManagedYtDlp.Source(channel: "stable").pipArguments
        #expect(stable.last == "yt-dlp[default]" && !stable.contains("--pre") && !stable.contains("--no-index"))
        let nightly = ManagedYtDlp.Source(channel: "nightly", indexURL: "https://mirror/simple", findLinks: ["/w"]).pipArguments
        #expect(nightly.contains("--pre"))
        #expect(nightly.contains { $0 == "--index-url" } && nightly.contains("https://mirror/simple"))
        let offline = ManagedYtDlp.Source(channel: "stable", indexURL: "https://ignored", findLinks: ["/w"], noIndex: true).pipArguments
        #expect(offline.contains("--no-index") && !offline.contains("--index-url"))
        #expect(zip(offline, offline.dropFirst()).contains { $0 == "--find-links" && $1 == "/w" })
    }

    @Test func switchingKeepsThePreviousAndPruneRemovesOlderOnes() throws {
        let state = try scratch()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let managed = ManagedYtDlp(stateDirectory: state)
        #expect(managed.root == state + "/yt-dlp")
        #expect(managed.currentVersion() == nil && managed.executable() == nil)
        for v in ["2026.10.1", "2026.11.1", "2026.12.1"] { try fakeVersion(managed, v) }
        try FileManager.default.createDirectory(atPath: managed.versionsDirectory + "/.install-1-2", withIntermediateDirectories: true)

        try managed.activate("2026.10.1")
        #expect(managed.currentVersion() == "2026.10.1" && managed.previousVersion() == nil)
        try managed.activate("2026.11.1")
        try managed.activate("2026.12.1")
        #expect(managed.currentVersion() == "2026.12.1" && managed.previousVersion() == "2026.11.1")
        #expect(managed.executable() == managed.versionsDirectory + "/2026.12.1/bin/yt-dlp")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: managed.root + "/current") == "versions/2026.12.1")
        #expect(managed.installedVersions() == ["2026.10.1", "2026.11.1", "2026.12.1"])

        #expect(managed.prune() == ["2026.10.1"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: managed.versionsDirectory).sorted() == ["2026.11.1", "2026.12.1"])

        // current's executable gone: the previous one runs.
        try FileManager.default.removeItem(atPath: managed.versionsDirectory + "/2026.12.1/bin/yt-dlp")
        #expect(managed.executable() == managed.versionsDirectory + "/2026.11.1/bin/yt-dlp")
    }

    @Test func oneInstallAtATime() throws {
        let state = try scratch()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let managed = ManagedYtDlp(stateDirectory: state)
        let first = try #require(try managed.lock())
        #expect(try managed.lock() == nil)
        first.release()
        let again = try #require(try managed.lock())
        again.release()
    }

    @Test func scriptsAreRewrittenForTheVenvsNewPlace() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let old = dir + "/.install-9"
        let new = dir + "/2026.12.1"
        try FileManager.default.createDirectory(atPath: new + "/bin", withIntermediateDirectories: true)
        let script = "#!\(old)/bin/python\nimport sys\nprint('\(old)/kept-after-the-head' if False else 1)\n"
        FileManager.default.createFile(atPath: new + "/bin/yt-dlp", contents: Data(script.utf8), attributes: [.posixPermissions: 0o755])
        FileManager.default.createFile(atPath: new + "/bin/data.bin", contents: Data([0, 1, 2]))
        try ManagedYtDlp.relocateScripts(in: new + "/bin", from: old, to: new)
        let text = try String(contentsOfFile: new + "/bin/yt-dlp", encoding: .utf8)
        #expect(text.hasPrefix("#!\(new)/bin/python\n"))
        #expect(FileManager.default.isExecutableFile(atPath: new + "/bin/yt-dlp"))
        #expect(FileManager.default.contents(atPath: new + "/bin/data.bin") == Data([0, 1, 2]))
    }

    @Test func smokeCheckRefusesAVersionThatDoesNotRun() async throws {
        let state = try scratch()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let managed = ManagedYtDlp(stateDirectory: state)
        try fakeVersion(managed, "2026.12.1")
        #expect(try await managed.smokeCheck(managed.versionsDirectory + "/2026.12.1") == "2026.12.1")
        let broken = managed.versionsDirectory + "/broken"
        try FileManager.default.createDirectory(atPath: broken + "/bin", withIntermediateDirectories: true)
        FileManager.default.createFile(
            atPath: broken + "/bin/yt-dlp", contents: Data("#!/bin/sh\necho oops >&2\nexit 1\n".utf8),
            attributes: [.posixPermissions: 0o755])
        await #expect(throws: ManagedYtDlpError.self) { try await managed.smokeCheck(broken) }
        do {
            _ = try await managed.smokeCheck(broken)
        } catch {
            guard case .broken(let why) = error else { Issue.record("expected .broken, got \(error)"); return }
            #expect(why.contains("exit status 1") && why.contains("oops"))
        }
    }
}
