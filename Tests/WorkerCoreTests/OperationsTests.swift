import Foundation
import Testing
import WorkerConfig

@testable import WorkerCore

/// Epoch milliseconds of a UTC wall-clock time.
private func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Int64 {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let date = calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))!
    return Int64(date.timeIntervalSince1970 * 1000)
}

private let utcZone = TimeZone(identifier: "UTC")!

@Suite("Schedule timing")
struct ScheduleTimingTests {
    let everyTwo = ScheduleTiming.Spec.every(milliseconds: 2000)

    @Test func everyTicksAreEpochMultiples() {
        #expect(ScheduleTiming.next(after: 10_001, spec: everyTwo) == 12_000)
        #expect(ScheduleTiming.next(after: 12_000, spec: everyTwo) == 14_000)
        #expect(ScheduleTiming.next(after: -1, spec: everyTwo) == 0)
    }

    @Test func nothingIsDueUntilTheNextTick() {
        #expect(ScheduleTiming.due(everyTwo, last: 12_000, now: 12_000) == nil)
        #expect(ScheduleTiming.due(everyTwo, last: 12_000, now: 13_999) == nil)
        #expect(ScheduleTiming.due(everyTwo, last: 12_500, now: 13_999) == nil, "a start between ticks waits for the next")
        #expect(ScheduleTiming.due(everyTwo, last: 12_000, now: 14_000) == ScheduleTiming.Due(tick: 14_000, skipped: 0))
        #expect(ScheduleTiming.due(everyTwo, last: 12_000, now: 15_999) == ScheduleTiming.Due(tick: 14_000, skipped: 0))
    }

    @Test func missedTicksFoldIntoOneRunForTheLatest() {
        #expect(ScheduleTiming.due(everyTwo, last: 12_000, now: 21_000) == ScheduleTiming.Due(tick: 20_000, skipped: 3))
        #expect(ScheduleTiming.due(everyTwo, last: 12_500, now: 21_000) == ScheduleTiming.Due(tick: 20_000, skipped: 3))
        // A month of a 2-second schedule is one run, computed without walking the ticks.
        let month: Int64 = 30 * 86_400_000
        let due = ScheduleTiming.due(everyTwo, last: 0, now: month + 1)
        #expect(due == ScheduleTiming.Due(tick: month, skipped: Int(month / 2000) - 1))
    }

    @Test func clockGoingBackwardsFiresNothing() {
        #expect(ScheduleTiming.due(everyTwo, last: 20_000, now: 10_000) == nil)
    }

    @Test func cronFiresTheLatestMatchingMinute() throws {
        let spec = ScheduleTiming.Spec.cron(try CronExpression("*/15 * * * *"))
        let last = utc(2026, 3, 1, 10, 0)
        #expect(ScheduleTiming.due(spec, last: last, now: utc(2026, 3, 1, 10, 14, 59), timeZone: utcZone) == nil)
        #expect(
            ScheduleTiming.due(spec, last: last, now: utc(2026, 3, 1, 10, 15, 0), timeZone: utcZone)
                == ScheduleTiming.Due(tick: utc(2026, 3, 1, 10, 15), skipped: 0))
        #expect(
            ScheduleTiming.due(spec, last: last, now: utc(2026, 3, 1, 11, 7), timeZone: utcZone)
                == ScheduleTiming.Due(tick: utc(2026, 3, 1, 11, 0), skipped: 3))
        #expect(ScheduleTiming.next(after: last, spec: spec, timeZone: utcZone) == utc(2026, 3, 1, 10, 15))
    }

    @Test func cronAfterALongOutageLooksBackOnlyAsFarAsNeeded() throws {
        // Every minute, down for a year: one run, found in the first (one-hour) window.
        let minutely = ScheduleTiming.Spec.cron(try CronExpression("* * * * *"))
        let due = ScheduleTiming.due(minutely, last: utc(2025, 3, 1), now: utc(2026, 3, 1, 12, 30, 10), timeZone: utcZone)
        #expect(due?.tick == utc(2026, 3, 1, 12, 30))
        // Yearly, last fired two years ago: the latest 1 January (the skipped count is a lower
        // bound once the look-back stops short of the last fire).
        let yearly = ScheduleTiming.Spec.cron(try CronExpression("@yearly"))
        let y = ScheduleTiming.due(yearly, last: utc(2024, 1, 1), now: utc(2026, 6, 1), timeZone: utcZone)
        #expect(y?.tick == utc(2026, 1, 1))
        #expect(ScheduleTiming.due(yearly, last: utc(2026, 1, 1), now: utc(2026, 12, 31, 23, 59), timeZone: utcZone) == nil)
        // Names, lists and ranges: Monday and Friday at 09:30, checked on a Wednesday.
        let weekdays = ScheduleTiming.Spec.cron(try CronExpression("30 9 * * mon,fri"))
        let w = ScheduleTiming.due(weekdays, last: utc(2026, 3, 2, 9, 30), now: utc(2026, 3, 11, 12, 0), timeZone: utcZone)
        #expect(w == ScheduleTiming.Due(tick: utc(2026, 3, 9, 9, 30), skipped: 1))
    }

    @Test func cronHonoursTheTimeZone() throws {
        let spec = ScheduleTiming.Spec.cron(try CronExpression("0 3 * * *"))
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        // 03:00 in Berlin (UTC+1 in March before the switch) is 02:00 UTC.
        #expect(ScheduleTiming.next(after: utc(2026, 3, 1), spec: spec, timeZone: berlin) == utc(2026, 3, 1, 2, 0))
    }

    @Test func specsComeFromTheConfiguration() {
        let every = ScheduleSettings(name: "h", every: 120, job: ScheduledJob(type: "noop", queue: "default"))
        #expect(ScheduleTiming.Spec(every) == .every(milliseconds: 120_000))
        #expect(ScheduleTiming.Spec(every)?.description == "every 2m")
        let cron = ScheduleSettings(name: "c", cron: "*/15 * * * *", job: ScheduledJob(type: "cleanup", queue: "default"))
        #expect(ScheduleTiming.Spec(cron)?.description == "cron */15 * * * *")
        #expect(Worker.scheduledJobID(schedule: "cleanup", tick: 1_795_555_370_000) == "schedule:cleanup:1795555370000")
        #expect(JobEnvelope.isValidID(Worker.scheduledJobID(schedule: String(repeating: "n", count: 64), tick: Int64.max)))
    }
}

@Suite("Cleanup rules")
struct CleanupRuleTests {
    @Test func leftoversAreRecognised() {
        for name in [
            "video.mp4.part", "video.f137.mp4.part", "video.f137.mp4.part-Frag12", "video.mp4.ytdl",
            ".Title [abc].mp4.part-1234-99887766",
        ] {
            #expect(FileSweeper.isPartialLeftover(name), "\(name)")
        }
        for name in ["video.mp4", "part.mp4", "My part one.mkv", "Title [abc].en.vtt", ".plexignore", "notes.partition"] {
            #expect(!FileSweeper.isPartialLeftover(name), "\(name)")
        }
    }

    @Test func sidecarsShareTheStemOfAKnownFile() {
        let stems: Set<String> = ["/lib/Chan/Title [abc]", "/lib/Chan/Mr. Robot [x1]"]
        #expect(CleanupHandler.sharesStem("/lib/Chan/Title [abc].en.vtt", stems))
        #expect(CleanupHandler.sharesStem("/lib/Chan/Title [abc].jpg", stems))
        #expect(CleanupHandler.sharesStem("/lib/Chan/Mr. Robot [x1].nfo", stems))
        #expect(!CleanupHandler.sharesStem("/lib/Chan/Title [abd].jpg", stems))
        #expect(!CleanupHandler.sharesStem("/lib/Other/Title [abc].jpg", stems), "only beside the known file")
        #expect(!CleanupHandler.sharesStem("/lib/Chan/Title [abc]", stems), "no extension, no sidecar")
    }
}

@Suite("Health probes")
struct HealthProbeTests {
    /// A probe (yt-dlp --version and the like) runs below the daemon's CPU priority, so a check never
    /// takes CPU from jobs; its output and status still come back.
    @Test func aProbeRunsAtALowerPriorityAndReportsItsOutput() async throws {
        let mine = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        let output = try #require(await ProcessProbe.run("sh", ["-c", "sleep 0.2; cut -d' ' -f19 /proc/self/stat; exit 3"], timeout: 5))
        #expect(output.status == 3)
        #expect(Int32(output.text.trimmingCharacters(in: .whitespacesAndNewlines)) == mine + ProcessProbe.niceness)
        #expect(await ProcessProbe.run("no-such-probe-\(getpid())", [], timeout: 1) == nil)
    }
}
