// media-bench: the Media module side by side with the ffmpeg command doing the
// same work on the same generated 60 s 720p file. Prints figures, never
// pass/fail. Run with `swift run -c release media-bench`.
//
// Each of our operations runs in a child process of this executable
// (`media-bench child ...`), which reports the wall time of the API call itself
// (what the daemon pays: it converts in-process) and its own peak RSS (VmHWM
// from /proc/self/status). The child's whole run, process start included, is
// printed too. The ffmpeg command is timed from spawn to exit; its peak RSS
// comes from GNU time (`/usr/bin/time -f %M`) when that is installed, else from
// wait4's ru_maxrss, which Linux never lets fall below the spawning process's
// own peak (noted in the table).

import ArgumentParser
import Foundation
import Media

#if canImport(Glibc)
    import Glibc
#endif

@main
struct MediaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "media-bench",
        abstract: "Media operations in-process against the ffmpeg command.",
        subcommands: [Compare.self, Child.self],
        defaultSubcommand: Compare.self)
}

// MARK: - the comparison

struct Compare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare", abstract: "Generate the input, run every operation both ways, print a table.")

    @Option(help: "Length of the generated input in seconds.") var seconds = 60
    @Option(help: "Repetitions of each operation (the median is reported).") var reps = 5
    @Option(help: "Thumbnail time in seconds.") var at = 32.0
    @Option(help: "Thumbnail width.") var width = 320
    @Option(help: "Work folder (default: a new temporary folder, removed at the end).") var dir: String?
    @Flag(help: "Keep the work folder.") var keep = false
    @Option(help: "Run only the operations whose name starts with this.") var only: String?

    func run() async throws {
        guard let ffmpeg = which("ffmpeg") else { throw ValidationError("the ffmpeg command is not on PATH") }
        let work = dir ?? (NSTemporaryDirectory() + "media-bench-\(getpid())")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { if !keep && dir == nil { try? FileManager.default.removeItem(atPath: work) } }

        let input = "\(work)/in.mp4"
        let video = "\(work)/video-only.mp4"
        let audio = "\(work)/audio-only.m4a"
        print("generating \(seconds) s 1280x720 30 fps H.264 (x264 veryfast, keyframe every 5 s) + AAC 128k stereo ...")
        try spawnChecked(
            ffmpeg,
            [
                "-nostdin", "-v", "error", "-y",
                "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-t", "\(seconds)", "-map", "0:v", "-map", "1:a", "-ac", "2",
                "-c:v", "libx264", "-preset", "veryfast", "-g", "150", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "128k", input,
            ])
        try spawnChecked(ffmpeg, ["-nostdin", "-v", "error", "-y", "-i", input, "-an", "-c", "copy", video])
        try spawnChecked(ffmpeg, ["-nostdin", "-v", "error", "-y", "-i", input, "-vn", "-c", "copy", audio])
        let size = (try? FileManager.default.attributesOfItem(atPath: input)[.size] as? Int) ?? 0
        print("input: \(input) (\(size / 1_000_000) MB)")
        // Warm the page cache for both sides, in small reads to keep this
        // process's own peak RSS low.
        for f in [input, video, audio] { warm(f) }
        let gnuTime = FileManager.default.isExecutableFile(atPath: "/usr/bin/time") ? "/usr/bin/time" : nil

        let t = String(at)
        let w = String(width)
        let scale = "scale=\(w):-1"
        // Cuts 20–30 and 40–45 (on keyframes: one every 5 s) with three chapters: ffmpeg's concat
        // demuxer over the kept ranges of each input, plus an FFMETADATA file of the shifted chapters.
        var concat: [String: String] = [:]
        for (name, file) in [("v", video), ("a", audio)] {
            var text = "ffconcat version 1.0\n"
            for (a, b) in [(0, 20), (30, 40), (45, seconds)] { text += "file '\(file)'\ninpoint \(a)\noutpoint \(b)\n" }
            concat[name] = "\(work)/\(name).ffconcat"
            try text.write(toFile: concat[name]!, atomically: true, encoding: .utf8)
        }
        var meta = ";FFMETADATA1\n"
        for (a, b, title) in [(0, 20, "One"), (20, 30, "Two"), (30, seconds - 15, "Three")] {
            meta += "[CHAPTER]\nTIMEBASE=1/1000\nSTART=\(a * 1000)\nEND=\(b * 1000)\ntitle=\(title)\n"
        }
        try meta.write(toFile: "\(work)/chapters.txt", atomically: true, encoding: .utf8)
        let allOps: [Op] = [
            Op(
                name: "merge + 2 cuts + 3 chapters -> mp4", ours: ["merge-cut", video, audio, "\(work)/ours-cut.mp4"],
                ffmpeg: [
                    "-f", "concat", "-safe", "0", "-i", concat["v"]!, "-f", "concat", "-safe", "0", "-i", concat["a"]!,
                    "-i", "\(work)/chapters.txt", "-map", "0:v:0", "-map", "1:a:0", "-map_chapters", "2", "-c", "copy",
                    "-movflags", "+faststart", "\(work)/ff-cut.mp4",
                ], goal: nil),
            Op(
                name: "remux mp4 -> mp4 (index first)", ours: ["remux", input, "", "\(work)/ours.mp4"],
                ffmpeg: ["-i", input, "-map", "0", "-c", "copy", "-movflags", "+faststart", "\(work)/ff.mp4"], goal: 0.5),
            Op(
                name: "remux mp4 -> mkv", ours: ["remux-mkv", input, "", "\(work)/ours.mkv"],
                ffmpeg: ["-i", input, "-map", "0", "-c", "copy", "\(work)/ff.mkv"], goal: nil),
            Op(
                name: "merge video+audio -> mp4", ours: ["merge", video, audio, "\(work)/ours-merge.mp4"],
                ffmpeg: [
                    "-i", video, "-i", audio, "-map", "0:v:0", "-map", "1:a:0", "-c", "copy",
                    "-movflags", "+faststart", "\(work)/ff-merge.mp4",
                ], goal: 0.5),
            Op(
                name: "thumbnail keyframe (JPEG, \(w) px)", ours: ["keyframe", input, "", "\(work)/ours-k.jpg"],
                ffmpeg: ["-ss", t, "-i", input, "-frames:v", "1", "-vf", scale, "-q:v", "3", "\(work)/ff-k.jpg"], goal: 0.2),
            Op(
                name: "  peer: ffmpeg -noaccurate_seek", ours: nil,
                ffmpeg: [
                    "-noaccurate_seek", "-ss", t, "-i", input, "-frames:v", "1", "-vf", scale, "-q:v", "3",
                    "\(work)/ff-k2.jpg",
                ], goal: nil),
            Op(
                name: "thumbnail exact (JPEG, \(w) px)", ours: ["exact", input, "", "\(work)/ours-e.jpg"],
                ffmpeg: ["-i", input, "-ss", t, "-frames:v", "1", "-vf", scale, "-q:v", "3", "\(work)/ff-e.jpg"], goal: 0.9),
            Op(
                name: "audio -> m4a (AAC copy)", ours: ["m4a", input, "", "\(work)/ours.m4a"],
                ffmpeg: ["-i", input, "-vn", "-c:a", "copy", "-movflags", "+faststart", "\(work)/ff.m4a"], goal: nil),
            Op(
                name: "audio -> mp3 (libmp3lame 192k)", ours: ["mp3", input, "", "\(work)/ours.mp3"],
                ffmpeg: ["-i", input, "-vn", "-c:a", "libmp3lame", "-b:a", "192k", "\(work)/ff.mp3"], goal: nil),
        ]
        let ops = allOps.filter { only == nil || $0.name.hasPrefix(only!) }

        let selfExe = "/proc/self/exe"
        var rows: [Row] = []
        for op in ops {
            var ours: [Sample] = []
            var ff: [Sample] = []
            for _ in 0..<reps {
                if let o = op.ours {
                    let resultFile = "\(work)/result.txt"
                    let s = try spawnChecked(
                        selfExe,
                        [
                            "child", "--op", o[0], "--input", o[1], "--input2", o[2],
                            "--output", o[3], "--at", t, "--width", w, "--result", resultFile,
                        ])
                    let fields = try String(contentsOfFile: resultFile, encoding: .utf8).split(separator: " ")
                    ours.append(
                        Sample(
                            wall: s.wall,
                            rssKB: fields.count > 1 ? Int(fields[1].trimmingCharacters(in: .whitespacesAndNewlines)) ?? s.rssKB : s.rssKB,
                            inner: Double(fields[0])))
                }
                let args = ["-nostdin", "-v", "error", "-y"] + op.ffmpeg
                if let gnuTime {
                    let rssFile = "\(work)/rss.txt"
                    var sample = try spawnChecked(gnuTime, ["-f", "%M", "-o", rssFile, ffmpeg] + args)
                    let text = try String(contentsOfFile: rssFile, encoding: .utf8)
                    sample.rssKB = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? sample.rssKB
                    ff.append(sample)
                } else {
                    ff.append(try spawnChecked(ffmpeg, args))
                }
            }
            rows.append(Row(op: op, ours: ours, ffmpeg: ff))
            print(rows.last!.line)
        }

        print("")
        print(
            "| operation | ours, in-process ms | ours, whole process ms | ffmpeg command ms | ratio | goal | ours peak RSS | ffmpeg peak RSS |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows { print(r.markdown) }
        print("")
        print("median of \(reps) runs; ratio = ours in-process / ffmpeg command; \(ProcessInfo.processInfo.activeProcessorCount) CPUs")
        print(
            "peak RSS: ours = VmHWM of the child; ffmpeg = "
                + (gnuTime != nil ? "GNU time %M" : "wait4 ru_maxrss (at least this process's own peak, \(selfHWM()) kB)"))
        print("ffmpeg: " + (try runCapture(ffmpeg, ["-version"]).split(separator: "\n").first.map(String.init) ?? "?"))
    }
}

struct Op {
    let name: String
    let ours: [String]?  // op, input, input2, output
    let ffmpeg: [String]
    let goal: Double?
}

struct Sample {
    var wall: Double  // ms, spawn to exit
    var rssKB: Int  // ru_maxrss
    var inner: Double? = nil  // ms, the API call inside the child
}

struct Row {
    let op: Op
    let ours: [Sample]
    let ffmpeg: [Sample]

    var oursInner: Double? { ours.isEmpty ? nil : median(ours.compactMap(\.inner)) }
    var oursWall: Double? { ours.isEmpty ? nil : median(ours.map(\.wall)) }
    var ffWall: Double { median(ffmpeg.map(\.wall)) }
    var ratio: Double? { oursInner.map { $0 / ffWall } }

    var line: String {
        let o = oursInner.map { String(format: "%8.1f ms", $0) } ?? "        —  "
        let r = ratio.map { String(format: "%.2fx", $0) } ?? "—"
        return "\(op.name.padding(toLength: 36, withPad: " ", startingAt: 0)) ours \(o)  ffmpeg \(String(format: "%8.1f ms", ffWall))  \(r)"
    }

    var markdown: String {
        func ms(_ v: Double?) -> String { v.map { String(format: "%.1f", $0) } ?? "—" }
        func mb(_ s: [Sample]) -> String { s.isEmpty ? "—" : String(format: "%.1f MB", Double(s.map(\.rssKB).max()!) / 1024) }
        let r = ratio.map { String(format: "%.2f×", $0) } ?? "—"
        let g = op.goal.map { String(format: "≤ %.1f×", $0) } ?? "—"
        return "| \(op.name) | \(ms(oursInner)) | \(ms(oursWall)) | \(ms(ffWall)) | \(r) | \(g) | \(mb(ours)) | \(mb(ffmpeg)) |"
    }
}

func median(_ v: [Double]) -> Double {
    let s = v.sorted()
    if s.isEmpty { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

// MARK: - one operation in a child process

struct Child: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "child", abstract: "Run one operation through the Media API (used by compare).")

    @Option var op: String
    @Option var input: String
    @Option var input2: String = ""
    @Option var output: String
    @Option var at: Double = 32
    @Option var width: Int = 320
    @Option var result: String

    func run() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        switch op {
        case "remux": _ = try await Media.remux(input: input, output: output, container: .mp4)
        case "remux-mkv": _ = try await Media.remux(input: input, output: output, container: .mkv)
        case "merge": _ = try await Media.merge(video: input, audio: input2, output: output, container: .mp4)
        case "merge-cut":
            let edit = EditRequest(
                cut: [TimeRange(start: 20, end: 30), TimeRange(start: 40, end: 45)],
                chapters: [
                    ChapterMark(start: 0, end: 20, title: "One"), ChapterMark(start: 30, end: 40, title: "Two"),
                    ChapterMark(start: 45, title: "Three"),
                ])
            _ = try await Media.merge(video: input, audio: input2, output: output, container: .mp4, edit: edit)
        case "keyframe":
            _ = try await Media.thumbnail(input: input, output: output, at: .seconds(at), width: width, format: .jpeg, mode: .keyframe)
        case "exact":
            _ = try await Media.thumbnail(input: input, output: output, at: .seconds(at), width: width, format: .jpeg, mode: .exact)
        case "m4a": _ = try await Media.extractAudio(input: input, output: output, format: .m4a)
        case "mp3": _ = try await Media.extractAudio(input: input, output: output, format: .mp3)
        default: throw ValidationError("unknown operation \(op)")
        }
        let d = clock.now - start
        let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        try String(format: "%.3f %d\n", ms, selfHWM()).write(toFile: result, atomically: true, encoding: .utf8)
    }
}

// MARK: - processes

/// This process's peak resident set (VmHWM), in kB.
func selfHWM() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") ?? 0
    }
    return 0
}

/// Reads a file through the page cache, 1 MiB at a time.
func warm(_ path: String) {
    guard let h = FileHandle(forReadingAtPath: path) else { return }
    defer { try? h.close() }
    while let d = try? h.read(upToCount: 1 << 20), !d.isEmpty {}
}

func which(_ name: String) -> String? {
    for d in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(d)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}

struct SpawnError: Error, CustomStringConvertible { let description: String }

/// Spawns a program, waits for it with wait4 and returns its wall time and peak RSS.
@discardableResult
func spawnChecked(_ exe: String, _ args: [String]) throws -> Sample {
    let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let clock = ContinuousClock()
    let start = clock.now
    let rc = posix_spawn(&pid, exe, nil, nil, argv, environ)
    if rc != 0 { throw SpawnError(description: "cannot start \(exe): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 {
        if errno != EINTR { throw SpawnError(description: "wait4 failed: \(String(cString: strerror(errno)))") }
    }
    let d = clock.now - start
    let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    let exited = (status & 0x7f) == 0
    let code = (status >> 8) & 0xff
    if !exited || code != 0 {
        throw SpawnError(description: "\(exe) \(args.joined(separator: " ")) failed (status \(status))")
    }
    return Sample(wall: ms, rssKB: Int(usage.ru_maxrss))
}

func runCapture(_ exe: String, _ args: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
