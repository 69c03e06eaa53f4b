import Foundation
import Testing
import WorkerConfig
import YtDlp

@testable import WorkerCore

@Suite("managed yt-dlp: which one a download starts, and when the update may switch")
struct YtDlpGateTests {
    @Test func aCommandIsUsedAsItIs() throws {
        var configuration = WorkerConfiguration()
        configuration.youtube.ytDlp = "/opt/yt-dlp/bin/yt-dlp"
        #expect(try YtDlpGate.executable(configuration) == "/opt/yt-dlp/bin/yt-dlp")
    }

    @Test func managedResolvesCurrentOrWaitsWhenNoneIsInstalled() throws {
        let state = NSTemporaryDirectory() + "gate-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        var configuration = WorkerConfiguration()
        configuration.youtube.ytDlp = "managed"
        configuration.paths.state = state
        do {
            _ = try YtDlpGate.executable(configuration)
            Issue.record("expected a waiting failure")
        } catch {
            #expect(error.deferral != nil && error.retryable, "the download waits, attempt not counted")
            #expect(error.message.contains("ytdlp install"))
        }
        let managed = ManagedYtDlp(stateDirectory: state)
        let bin = managed.versionsDirectory + "/2026.12.1/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: bin + "/yt-dlp", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        try managed.activate("2026.12.1")
        #expect(try YtDlpGate.executable(configuration) == bin + "/yt-dlp")
    }

    @Test func theSwitchWaitsForRunningDownloads() throws {
        let gate = YtDlpGate()
        var configuration = WorkerConfiguration()
        configuration.youtube.ytDlp = "yt-dlp"
        _ = try gate.enter(configuration)
        _ = try gate.enter(configuration)
        #expect(gate.downloads == 2)
        var ran = false
        #expect(try gate.whenIdle { ran = true } == false && !ran)
        gate.leave()
        gate.leave()
        gate.leave()  // never below zero
        #expect(gate.downloads == 0)
        #expect(try gate.whenIdle { ran = true } == true && ran)
    }

    @Test func aScheduledUpdateIsOneJobPerDaemonAndTick() {
        #expect(
            YtDlpUpdateScheduler.jobID(consumer: "host-1-ab", tick: 1_767_225_600_000) == "schedule:youtube.update:host-1-ab:1767225600000")
    }
}
