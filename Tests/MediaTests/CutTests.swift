import Foundation
import Testing

@testable import Media

/// Runs ffprobe on a file and returns its JSON.
func ffprobeJSON(_ args: [String]) throws -> [String: Any] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["ffprobe", "-v", "error", "-of", "json"] + args
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (try JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
}

/// (start, end, title) of the chapters ffprobe sees.
func ffprobeChapters(_ path: String) throws -> [(Double, Double, String)] {
    let j = try ffprobeJSON(["-show_chapters", path])
    return (j["chapters"] as? [[String: Any]] ?? []).map {
        (
            Double($0["start_time"] as? String ?? "") ?? -1, Double($0["end_time"] as? String ?? "") ?? -1,
            ($0["tags"] as? [String: Any])?["title"] as? String ?? ""
        )
    }
}

/// Presentation times of the first packets of a stream at or after `from` seconds.
func firstPacketTime(_ path: String, stream: String, from: Double) throws -> Double? {
    let j = try ffprobeJSON(["-select_streams", stream, "-show_entries", "packet=pts_time", "-show_packets", path])
    let times = (j["packets"] as? [[String: Any]] ?? []).compactMap { Double($0["pts_time"] as? String ?? "") }
    return times.filter { $0 >= from - 0.0001 }.min()
}

/// One AAC frame at 48 kHz.
let aacFrame = 1024.0 / 48000

@Suite("cuts and chapters in the merge pass")
struct CutTests {
    let edit = EditRequest(
        cut: [TimeRange(start: 20, end: 30), TimeRange(start: 0, end: 5)],
        chapters: [ChapterMark(start: 0, end: 20, title: "Part one"), ChapterMark(start: 30, title: "Part \u{7}two")])

    @Test(arguments: [OutputContainer.mp4, .mkv])
    func mergeWithTwoCutsAndChapters(container: OutputContainer) async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/cut.\(container.fileExtension)"
        let r = try await Media.merge(video: f.longVideo, audio: f.longAudio, output: out, container: container, edit: edit)
        // Keyframes every 2 s: 0–5 becomes 0–6, 20–30 stays (30 is a keyframe).
        #expect(r.removed == [TimeRange(start: 0, end: 6), TimeRange(start: 20, end: 30)])
        #expect(r.removedSeconds == 16)
        let d = try #require(r.output.duration)
        #expect(abs(d - 44) <= 2.0 / 30 + aacFrame, "duration \(d)")
        // Audio and video start together at 0 and again right after the second cut (output 14 s).
        let v0 = try #require(try firstPacketTime(out, stream: "v:0", from: 0))
        let a0 = try #require(try firstPacketTime(out, stream: "a:0", from: 0))
        #expect(abs(v0 - a0) <= aacFrame + 0.001, "first video \(v0), first audio \(a0)")
        // (Matroska moves everything by the AAC priming delay so that no time is negative.)
        let v = try #require(try firstPacketTime(out, stream: "v:0", from: v0 + 13.99))
        let a = try #require(try firstPacketTime(out, stream: "a:0", from: v0 + 13.99))
        #expect(abs(v - v0 - 14) <= 0.002, "video resumes at \(v)")
        #expect(abs(v - a) <= aacFrame + 0.001, "after the cut: video \(v), audio \(a)")
        // Chapters shifted by the cuts, titles sanitized.
        let ch = try ffprobeChapters(out)
        #expect(ch.count == 2)
        if ch.count == 2 {
            #expect(abs(ch[0].0 - 0) < 0.01 && abs(ch[0].1 - 14) < 0.01 && ch[0].2 == "Part one")
            #expect(abs(ch[1].0 - 14) < 0.01 && abs(ch[1].1 - 44) < 0.01 && ch[1].2 == "Part two")
        }
        #expect(r.output.chapters.count == 2)
    }

    @Test func remuxShiftsTheInputsOwnChapters() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/cut.mp4"
        // chapters.mkv: 3 s video, keyframe every second, chapters 0–1.5 and 1.5–3.
        let r = try await Media.remux(
            input: f.chapters, output: out, container: .mp4, edit: EditRequest(cut: [TimeRange(start: 0, end: 1)]))
        #expect(r.removed == [TimeRange(start: 0, end: 1)])
        let ch = try ffprobeChapters(out)
        #expect(ch.count == 2)
        if ch.count == 2 {
            #expect(abs(ch[0].1 - 0.5) < 0.01 && ch[0].2 == "Opening")
            #expect(abs(ch[1].0 - 0.5) < 0.01 && abs(ch[1].1 - 2) < 0.01 && ch[1].2 == "Ending")
        }
    }

    @Test func hostileCutsNeverCrash() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/cut.mkv"
        var cuts = [
            TimeRange(start: -5, end: 1), TimeRange(start: 55, end: 500), TimeRange(start: 40, end: 30), TimeRange(start: .nan, end: 2),
        ]
        cuts += (0..<10_000).map { TimeRange(start: Double($0 % 20), end: Double($0 % 20) + 0.5) }
        let r = try await Media.merge(
            video: f.longVideo, audio: f.longAudio, output: out, container: .mkv, edit: EditRequest(cut: cuts))
        #expect(r.editNotes.first == "10004 ranges to remove given, only the first 1000 are used")
        #expect(r.editNotes.contains { $0.contains("range 3: start 40 is not before end 30, refused") })
        #expect(r.editNotes.contains { $0.contains("range 4") && $0.contains("finite") })
        // Overlapping ranges merged, then snapped to the keyframes every 2 s.
        #expect(r.removed == [TimeRange(start: 0, end: 20), TimeRange(start: 55, end: 60)])
        #expect((r.output.duration ?? 0) >= 1)
    }
}
