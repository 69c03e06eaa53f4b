import Foundation
import Testing

@testable import Media

/// Media fixtures made by the ffmpeg command once per test process, in a
/// temporary folder that is removed at exit.
struct Fixtures: Sendable {
    let dir: String
    var h264aac: String { "\(dir)/h264aac.mp4" }  // 640x360 30 fps H.264 + AAC, 3 s, moov at the end
    var vp9opus: String { "\(dir)/vp9opus.webm" }  // 320x240 VP9 + Opus, 2 s
    var videoOnlyMP4: String { "\(dir)/video-only.mp4" }  // H.264 only, 3 s
    var audioOnlyM4A: String { "\(dir)/audio-only.m4a" }  // AAC only, 3 s
    var videoOnlyWebM: String { "\(dir)/video-only.webm" }  // VP9 only, 2 s
    var audioOnlyWebM: String { "\(dir)/audio-only.webm" }  // Opus only, 2 s
    var vtt: String { "\(dir)/subs.en.vtt" }
    var truncated: String { "\(dir)/truncated.mp4" }  // first half of h264aac.mp4 (no moov)
    var truncatedFaststart: String { "\(dir)/truncated-faststart.mp4" }  // moov present, media data cut
    var empty: String { "\(dir)/empty.mp4" }
    var textAsMP4: String { "\(dir)/text.mp4" }
    var blackIntro: String { "\(dir)/black-intro.mp4" }  // 2 s black, then 2 s test pattern, keyframe every 1 s
    var chapters: String { "\(dir)/chapters.mkv" }  // 3 s, two chapters
    var fragmentedVideo: String { "\(dir)/dash-video.mp4" }  // fragmented (DASH-style) H.264 only, 3 s
    var fragmentedAudio: String { "\(dir)/dash-audio.m4a" }  // fragmented AAC only, 3 s
    var longVideo: String { "\(dir)/long-video.mp4" }  // 60 s 320x240 30 fps H.264 only, keyframe every 2 s
    var longAudio: String { "\(dir)/long-audio.m4a" }  // 60 s AAC 48 kHz only

    static let shared: Result<Fixtures, FixtureError> = make()

    static func get() throws -> Fixtures { try shared.get() }

    struct FixtureError: Error, CustomStringConvertible {
        let description: String
    }

    private static func make() -> Result<Fixtures, FixtureError> {
        guard let ffmpeg = findFFmpeg() else {
            return .failure(
                FixtureError(
                    description:
                        "the ffmpeg command is not on PATH: install ffmpeg (Debian package `ffmpeg`) to make the media test fixtures"))
        }
        let dir = NSTemporaryDirectory() + "medianest-media-tests-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            return .failure(FixtureError(description: "cannot create \(dir): \(error)"))
        }
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "medianest-media-tests-\(getpid())") }
        let f = Fixtures(dir: dir)
        let x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        let vp9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"]
        var jobs: [[String]] = [
            [
                "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-t", "3", "-g", "30",
            ] + x264 + ["-c:a", "aac", "-b:a", "96k", "-metadata", "title=Fixture Title", f.h264aac],
            [
                "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000",
                "-t", "2",
            ] + vp9 + ["-c:a", "libopus", "-b:a", "64k", f.vp9opus],
            ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "3", "-g", "30"] + x264 + [f.videoOnlyMP4],
            ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "3", "-c:a", "aac", "-b:a", "96k", f.audioOnlyM4A],
            ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2"] + vp9 + [f.videoOnlyWebM],
            ["-f", "lavfi", "-i", "sine=frequency=550:sample_rate=48000", "-t", "2", "-c:a", "libopus", "-b:a", "64k", f.audioOnlyWebM],
            [
                "-f", "lavfi", "-i", "color=c=black:size=320x240:rate=25:duration=2", "-f", "lavfi",
                "-i", "testsrc2=size=320x240:rate=25:duration=2", "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0",
                "-g", "25",
            ] + x264 + [f.blackIntro],
        ]
        jobs.append(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "60", "-g", "60"] + x264 + [f.longVideo])
        jobs.append(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "60", "-c:a", "aac", "-b:a", "64k", f.longAudio])
        for args in jobs {
            if let err = run(ffmpeg, ["-nostdin", "-v", "error", "-y"] + args) { return .failure(err) }
        }
        // Faststart copy for the truncated-with-moov case.
        let fast = "\(dir)/faststart-src.mp4"
        if let err = run(ffmpeg, ["-nostdin", "-v", "error", "-y", "-i", f.h264aac, "-c", "copy", "-movflags", "+faststart", fast]) {
            return .failure(err)
        }
        let frag = ["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1000000"]
        for (src, dst) in [(f.videoOnlyMP4, f.fragmentedVideo), (f.audioOnlyM4A, f.fragmentedAudio)] {
            if let err = run(ffmpeg, ["-nostdin", "-v", "error", "-y", "-i", src, "-c", "copy"] + frag + [dst]) {
                return .failure(err)
            }
        }
        let meta = "\(dir)/chapters.txt"
        let chapterText = """
            ;FFMETADATA1
            [CHAPTER]
            TIMEBASE=1/1000
            START=0
            END=1500
            title=Opening
            [CHAPTER]
            TIMEBASE=1/1000
            START=1500
            END=3000
            title=Ending

            """
        let vttText = """
            WEBVTT

            00:00:01.000 --> 00:00:02.500
            Hello from the fixture

            00:00:02.600 --> 00:00:02.900
            Second cue

            """
        do {
            try chapterText.write(toFile: meta, atomically: true, encoding: .utf8)
            try vttText.write(toFile: f.vtt, atomically: true, encoding: .utf8)
            try "this is plain text, not a video\n".write(toFile: f.textAsMP4, atomically: true, encoding: .utf8)
            _ = FileManager.default.createFile(atPath: f.empty, contents: Data())
            let whole = try Data(contentsOf: URL(fileURLWithPath: f.h264aac))
            try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: f.truncated))
            let fastData = try Data(contentsOf: URL(fileURLWithPath: fast))
            try fastData.prefix(fastData.count / 2).write(to: URL(fileURLWithPath: f.truncatedFaststart))
        } catch {
            return .failure(FixtureError(description: "cannot write fixtures: \(error)"))
        }
        if let err = run(
            ffmpeg,
            [
                "-nostdin", "-v", "error", "-y", "-i", f.videoOnlyMP4, "-i", meta, "-map_metadata", "1",
                "-map_chapters", "1", "-c", "copy", f.chapters,
            ])
        {
            return .failure(err)
        }
        return .success(f)
    }

    private static func findFFmpeg() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for d in path.split(separator: ":") {
            let p = "\(d)/ffmpeg"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Runs ffmpeg through posix_spawn, its stderr into a file quoted on failure.
    private static func run(_ exe: String, _ args: [String]) -> FixtureError? {
        let errPath = NSTemporaryDirectory() + "medianest-ffmpeg-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        defer { unlink(errPath) }
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, environ)
        if rc != 0 { return FixtureError(description: "cannot run ffmpeg: \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if status != 0 {
            let text = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            return FixtureError(description: "ffmpeg \(args.joined(separator: " ")) failed (status \(status)): \(text)")
        }
        return nil
    }
}

/// A fresh empty folder for one test's outputs.
func outputDir(_ name: String = #function) throws -> String {
    let f = try Fixtures.get()
    let safe = name.filter { $0.isLetter || $0.isNumber }
    let dir = "\(f.dir)/out-\(safe)-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Names in a folder (hidden ones too), to show that nothing partial is left.
func listing(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
}

func fileBytes(_ path: String, count: Int) -> [UInt8] {
    guard let h = FileHandle(forReadingAtPath: path) else { return [] }
    defer { try? h.close() }
    return [UInt8](h.readData(ofLength: count))
}

/// Expects `body` to throw a MediaError matching `check`.
func expectMediaError(
    _ check: (MediaError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws(MediaError) -> Void
) async {
    do {
        try await body()
        Issue.record("expected a MediaError, got success", sourceLocation: sourceLocation)
    } catch {
        #expect(check(error), "unexpected error: \(error) [\(error.detail)]", sourceLocation: sourceLocation)
    }
}

/// Collects progress values from the operation thread.
final class ProgressLog: @unchecked Sendable {
    // Sendable: `values` and `threadNames` are only touched under `lock`.
    private let lock = NSLock()
    private var values: [Double] = []
    private var threadNames: [String] = []
    func add(_ v: Double) { lock.lock(); values.append(v); lock.unlock() }
    func addName(_ n: String) { lock.lock(); threadNames.append(n); lock.unlock() }
    var all: [Double] { lock.lock(); defer { lock.unlock() }; return values }
    var names: [String] { lock.lock(); defer { lock.unlock() }; return threadNames }
}

/// The kernel's name of the calling thread.
func currentThreadName() -> String {
    let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
    return comm.trimmingCharacters(in: .whitespacesAndNewlines)
}
