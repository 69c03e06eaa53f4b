import Foundation
import Testing

@testable import WorkerConfig

@Suite("youtube cookies, extractor_args, plugin_dirs, throttle")
struct YouTubeAccessTests {
    static let cookieLines =
        "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t1893456000\tSID\tsecret-value-123\n"
        + "#HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t0\tHSID\tother\n"

    @Test func allSettingsAreRead() throws {
        let dir = try ScratchDirectory()
        let cookies = try dir.write("cookies.txt", Self.cookieLines)
        let plugins = dir.path + "/plugins"
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        let c = try parse(
            """
            youtube:
              cookies: \(cookies)
              extractor_args: { youtube: { player_client: [default, mweb], po_token: "web+abc" }, youtubetab: "skip=webpage" }
              plugin_dirs: [\(plugins), \(plugins)/]
              throttle: { sleep_requests: 0.75s, sleep_interval: 10s, max_sleep_interval: 20s, limit_rate: 4M }
            """)
        #expect(c.youtube.cookies == cookies)
        #expect(c.youtube.extractorArgs == ["youtube:player_client=default,mweb;po_token=web+abc", "youtubetab:skip=webpage"])
        #expect(c.youtube.pluginDirs == [plugins])
        #expect(c.youtube.sleepRequests == 0.75 && c.youtube.sleepInterval == 10 && c.youtube.maxSleepInterval == 20)
        #expect(c.youtube.limitRate == 4_000_000)
        let masked = c.maskedDescription()
        #expect(masked.split(separator: "\n").contains { $0.contains("cookies:") && $0.contains("***") } && !masked.contains(cookies))
    }

    @Test func extractorArgsAsAListOrStrings() throws {
        let c = try parse("youtube: { extractor_args: [\"youtube:player_client=mweb\", \"generic:impersonate\"] }")
        #expect(c.youtube.extractorArgs == ["youtube:player_client=mweb", "generic:impersonate"])
        let list = try parse("youtube: { extractor_args: { youtube: [player_client=mweb, player_skip=webpage] } }")
        #expect(list.youtube.extractorArgs == ["youtube:player_client=mweb;player_skip=webpage"])
    }

    @Test func oldSleepRequestsStillWorksButNotTwice() throws {
        #expect(try parse("youtube: { sleep_requests: 2s }").youtube.sleepRequests == 2)
        let e = parseError("youtube:\n  sleep_requests: 2s\n  throttle: { sleep_requests: 1s }\n")
        #expect(e?.key == "youtube.throttle.sleep_requests" && e?.line == 3)
        #expect(e?.message.contains("older spelling") == true)
    }

    @Test func updateOffIsAcceptedOtherChannelsNeedManaged() throws {
        #expect(try parse("youtube: { update: { channel: off, every: 1d }, throttle: { limit_rate: 1M } }").youtube.limitRate == 1_000_000)
        #expect(parseError("youtube:\n  update: { channel: weekly }\n")?.message.contains("stable, nightly, off") == true)
        #expect(parseError("youtube:\n  update: { channel: nightly }\n")?.message.contains("yt_dlp: managed") == true)
    }

    @Test func limitRateZeroIsNoLimit() throws {
        #expect(try parse("youtube: { throttle: { limit_rate: 0 } }").youtube.limitRate == nil)
    }

    @Test func badValuesAreRefusedWithFileAndLine() throws {
        let dir = try ScratchDirectory()
        let notCookies = try dir.write("bad.txt", "SID=secret-value-123; HSID=x\n")
        let empty = try dir.write("empty.txt", "# Netscape HTTP Cookie File\n")
        let cases: [(String, String, String)] = [
            ("youtube:\n  cookies: /nonexistent/cookies.txt\n", "youtube.cookies", "does not exist"),
            ("youtube:\n  cookies: \(notCookies)\n", "youtube.cookies", "line 1 of the cookies file is not a Netscape cookie"),
            ("youtube:\n  cookies: \(empty)\n", "youtube.cookies", "holds no cookies"),
            ("youtube:\n  cookies: \(dir.path)\n", "youtube.cookies", "not a regular file"),
            ("youtube:\n  cookies: relative.txt\n", "youtube.cookies", "absolute path"),
            ("youtube:\n  plugin_dirs: [/nonexistent/plugins]\n", "youtube.plugin_dirs[0]", "does not exist"),
            ("youtube:\n  plugin_dirs: /tmp\n", "youtube.plugin_dirs", "expected a list"),
            ("youtube:\n  extractor_args: { \"you tube\": \"a=b\" }\n", "youtube.extractor_args.you tube", "extractor name"),
            ("youtube:\n  extractor_args: { youtube: \"player client=x\" }\n", "youtube.extractor_args.youtube", "key=value"),
            (
                "youtube:\n  extractor_args: { youtube: { player_client: \"a;b\" } }\n", "youtube.extractor_args.youtube.player_client",
                "may not contain"
            ),
            ("youtube:\n  extractor_args: [\"player_client=mweb\"]\n", "youtube.extractor_args[0]", "extractor:key=value"),
            ("youtube:\n  extractor_args: 3\n", "youtube.extractor_args", "expected a map"),
            ("youtube:\n  throttle: { sleep_interval: soon }\n", "youtube.throttle.sleep_interval", "duration"),
            ("youtube:\n  throttle: { max_sleep_interval: 5s }\n", "youtube.throttle.max_sleep_interval", "needs sleep_interval"),
            (
                "youtube:\n  throttle: { sleep_interval: 10s, max_sleep_interval: 5s }\n", "youtube.throttle.max_sleep_interval",
                "not be shorter"
            ),
            ("youtube:\n  throttle: { limit_rate: fast }\n", "youtube.throttle.limit_rate", "bytes per second"),
            ("youtube:\n  throttle: { sleep: 1s }\n", "youtube.throttle.sleep", "unknown key"),
            ("youtube:\n  update: { channel: stable, every: 1d }\n", "youtube.update.channel", "need youtube.yt_dlp: managed"),
        ]
        for (yaml, key, words) in cases {
            let e = parseError(yaml)
            #expect(e?.key == key, "\(yaml)")
            #expect(e?.line == 2, "\(yaml)")
            #expect(e?.message.contains(words) == true, "\(yaml): \(e?.message ?? "-")")
            #expect(e?.description.contains("secret-value-123") != true, "the cookies' contents are never quoted")
        }
    }
}
