import Foundation
import Testing

@testable import WorkerConfig

@Suite("youtube.yt_dlp: managed and youtube.update")
struct YtDlpUpdateSettingsTests {
    @Test func managedDefaultsToStableDaily() throws {
        let c = try parse("paths: { state: /var/lib/mn }\nyoutube: { yt_dlp: Managed }")
        #expect(c.youtube.managed && c.youtube.ytDlp == "managed")
        #expect(c.youtube.update == YtDlpUpdateSettings(channel: "stable", every: 86400))
        #expect(c.paths.state == "/var/lib/mn")
        let masked = c.maskedDescription()
        #expect(masked.contains("state: /var/lib/mn") && masked.contains("channel: stable") && masked.contains("every: 1d"))
    }

    @Test func aCommandIsNotManagedAndUpdatesNothing() throws {
        let c = try parse("youtube: { yt_dlp: /usr/bin/yt-dlp }")
        #expect(!c.youtube.managed && c.youtube.update.channel == "off")
        #expect(WorkerConfiguration().paths.state == "/var/lib/medianest-worker")
    }

    @Test func everyKeyIsRead() throws {
        let c = try parse(
            """
            queues: { default: { concurrency: 1 }, maintenance: { concurrency: 1 } }
            youtube:
              yt_dlp: managed
              update:
                channel: nightly
                every: 6h
                queue: maintenance
                index_url: "https://user:secret@pypi.example.com/simple"
                find_links: [/srv/wheels, "https://wheels.example.com/"]
                python: /usr/bin/python3.12
            """)
        let u = c.youtube.update
        #expect(u.channel == "nightly" && u.every == 6 * 3600 && u.queue == "maintenance")
        #expect(u.indexURL == "https://user:secret@pypi.example.com/simple" && !u.noIndex)
        #expect(u.findLinks == ["/srv/wheels", "https://wheels.example.com/"] && u.python == "/usr/bin/python3.12")
        #expect(!c.maskedDescription().contains("user:secret@"), "the index's credentials are masked")
    }

    @Test func indexNoneNeedsFindLinks() throws {
        let c = try parse("youtube: { yt_dlp: managed, update: { index_url: none, find_links: [/srv/wheels] } }")
        #expect(c.youtube.update.noIndex && c.youtube.update.indexURL == nil)
        let e = parseError("youtube:\n  yt_dlp: managed\n  update:\n    index_url: none\n")
        #expect(e?.key == "youtube.update.index_url" && e?.line == 4 && e?.message.contains("find_links") == true)
    }

    @Test func badValuesAreRefusedWithFileAndLine() throws {
        let cases: [(String, String, Int, String)] = [
            ("youtube:\n  yt_dlp: managed\n  update: { channel: weekly }\n", "youtube.update.channel", 3, "stable, nightly, off"),
            ("youtube:\n  yt_dlp: managed\n  update: { every: 0s }\n", "youtube.update.every", 3, "1s"),
            ("youtube:\n  yt_dlp: managed\n  update: { every: soon }\n", "youtube.update.every", 3, "duration"),
            ("youtube:\n  yt_dlp: managed\n  update: { index_url: ftp://x }\n", "youtube.update.index_url", 3, "http"),
            ("youtube:\n  yt_dlp: managed\n  update: { find_links: [wheels] }\n", "youtube.update.find_links[0]", 3, "folders"),
            ("youtube:\n  yt_dlp: managed\n  update: { chanel: stable }\n", "youtube.update.chanel", 3, "unknown key"),
            ("youtube:\n  update: { channel: nightly }\n", "youtube.update.channel", 2, "yt_dlp: managed"),
            ("paths:\n  state: var/lib\n", "paths.state", 2, "absolute path"),
        ]
        for (yaml, key, line, words) in cases {
            let e = parseError(yaml)
            #expect(e?.key == key, "\(yaml): \(e?.key ?? "-")")
            #expect(e?.line == line, "\(yaml): \(e?.line ?? -1)")
            #expect(e?.message.contains(words) == true, "\(yaml): \(e?.message ?? "-")")
        }
    }

    @Test func theQueueMustExist() throws {
        let e = parseError("queues: { default: { concurrency: 1 } }\nyoutube:\n  yt_dlp: managed\n  update: { queue: nope }\n")
        #expect(e?.key == "youtube.update.queue" && e?.message.contains("not configured") == true)
        // Not checked when no update is scheduled.
        #expect(
            try parse("queues: { default: { concurrency: 1 } }\nyoutube: { yt_dlp: managed, update: { channel: off, queue: nope } }")
                .youtube.update.queue == "nope")
    }
}
