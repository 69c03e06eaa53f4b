import Foundation
import Testing

@testable import Media

/// One frame at 30 fps, the tolerance on durations.
let frame30 = 1.0 / 30 + 0.001

@Suite("remux, merge, audio, subtitles")
struct ConvertTests {
    @Test func remuxMP4ToMKV() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/out.mkv"
        let src = try await Media.probe(f.h264aac)
        let r = try await Media.remux(input: f.h264aac, output: out, container: .mkv)
        #expect(r.transcoded.isEmpty && r.dropped.isEmpty)
        let info = try await Media.probe(out)
        #expect(info.container == "matroska,webm")
        #expect(info.streams.map(\.codec) == ["h264", "aac"])
        #expect(abs((info.duration ?? 0) - (src.duration ?? 0)) <= frame30)
        #expect(info.tag("title") == "Fixture Title")
    }

    @Test func remuxToMP4IsFaststart() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        let out = dir + "/out.mp4"
        let log = ProgressLog()
        let threads = ProgressLog()
        _ = try await Media.remux(
            input: f.h264aac, output: out, container: .mp4,
            progress: {
                log.add($0); threads.addName(currentThreadName())
            })
        let info = try await Media.probe(out)
        #expect(info.streams.map(\.codec) == ["h264", "aac"])
        #expect(abs((info.duration ?? 0) - 3.0) <= frame30)
        // moov before mdat
        let head = fileBytes(out, count: 4096)
        let text = String(decoding: head.map { $0 < 32 || $0 > 126 ? UInt8(ascii: ".") : $0 }, as: UTF8.self)
        let moov = try #require(text.range(of: "moov"))
        if let mdat = text.range(of: "mdat") { #expect(moov.lowerBound < mdat.lowerBound) }
        // progress grows and ends at 1
        let values = log.all
        #expect(values.last == 1.0)
        #expect(values == values.sorted())
        #expect(values.count >= 3)
        #expect(listing(dir) == ["out.mp4"])
        // libav work (and so the progress callback) runs on the operation's own thread.
        #expect(Set(threads.names) == ["media.remux"])
    }

    @Test func concurrentOperations() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<4 {
                group.addTask {
                    _ = try await Media.remux(input: i % 2 == 0 ? f.h264aac : f.vp9opus, output: "\(dir)/\(i).mkv", container: .mkv)
                    _ = try await Media.thumbnail(input: f.h264aac, output: "\(dir)/\(i).jpg", at: .fraction(Double(i) / 4), width: 64)
                }
            }
            try await group.waitForAll()
        }
        #expect(listing(dir) == ["0.jpg", "0.mkv", "1.jpg", "1.mkv", "2.jpg", "2.mkv", "3.jpg", "3.mkv"])
        #expect(Media.libraryVersions.hasPrefix("libavformat 59."))
    }

    @Test func remuxWebMToMP4CopiesVP9AndOpus() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/out.mp4"
        let r = try await Media.remux(input: f.vp9opus, output: out, container: .mp4)
        #expect(r.transcoded.isEmpty)
        #expect(r.output.streams.map(\.codec) == ["vp9", "opus"])
    }

    @Test func remuxH264IntoWebMIsRefused() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        await expectMediaError({
            if case .unsupportedCodec(let codec, let container, _) = $0 { return codec == "h264" && container == "webm" }
            return false
        }) { () async throws(MediaError) in
            _ = try await Media.remux(input: f.h264aac, output: dir + "/out.webm", container: .webm)
        }
        #expect(listing(dir).isEmpty)
    }

    @Test func mergeMP4PairWithTagsAndSubtitles() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/merged.mp4"
        let tags = MediaTags(
            title: "A Title", artist: "Some Channel", date: "2024-01-31",
            description: "Line one\nline two", comment: "https://www.youtube.com/watch?v=abc")
        let r = try await Media.merge(
            video: f.videoOnlyMP4, audio: f.audioOnlyM4A, output: out, container: .mp4,
            tags: tags, subtitles: [SubtitleInput(path: f.vtt, language: "en")])
        #expect(r.transcoded.count == 1)  // webvtt -> mov_text
        let info = try await Media.probe(out)
        #expect(info.streams.map(\.codec) == ["h264", "aac", "mov_text"])
        #expect(info.subtitleStreams.first?.language == "eng")
        let video = try await Media.probe(f.videoOnlyMP4)
        #expect(abs((info.videoStreams[0].duration ?? 0) - (video.duration ?? 0)) <= frame30)
        #expect(abs((info.duration ?? 0) - 3.0) <= frame30)
        #expect(info.tag("title") == "A Title")
        #expect(info.tag("artist") == "Some Channel")
        #expect(info.tag("date") == "2024-01-31")
        #expect(info.tag("description") == "Line one\nline two")
        #expect(info.tag("comment") == "https://www.youtube.com/watch?v=abc")
    }

    @Test(arguments: [OutputContainer.mp4, .mkv])
    func mergeFragmentedDASHPair(container: OutputContainer) async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/dash.\(container.rawValue)"
        let r = try await Media.merge(video: f.fragmentedVideo, audio: f.fragmentedAudio, output: out, container: container)
        #expect(r.transcoded.isEmpty)
        let info = try await Media.probe(out)
        #expect(info.streams.map(\.codec) == ["h264", "aac"])
        #expect(abs((info.duration ?? 0) - 3.0) <= frame30 + 0.03)
        #expect(info.videoStreams.first?.frameRate.map { abs($0 - 30) < 0.01 } == true)
    }

    @Test func mergeIntoMKVWithSubRip() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/merged.mkv"
        let r = try await Media.merge(
            video: f.videoOnlyMP4, audio: f.audioOnlyWebM, output: out, container: .mkv,
            tags: MediaTags(
                title: "MKV", artist: "Channel", date: "2024-02-29",
                description: "About", comment: "https://example.com/v"),
            subtitles: [SubtitleInput(path: f.vtt, language: "de")])
        let info = r.output
        #expect(info.streams.map(\.codec) == ["h264", "opus", "subrip"])
        #expect(info.subtitleStreams.first?.language == "ger")
        #expect(info.tag("title") == "MKV")
        #expect(info.tag("artist") == "Channel")
        #expect(info.tag("date") == "2024-02-29")
        #expect(info.tag("description") == "About")
        #expect(info.tag("comment") == "https://example.com/v")
    }

    @Test func mergeOpusIntoMP4IsCopied() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/merged.mp4"
        let r = try await Media.merge(video: f.videoOnlyMP4, audio: f.audioOnlyWebM, output: out, container: .mp4)
        #expect(r.transcoded.isEmpty)
        #expect(r.output.streams.map(\.codec) == ["h264", "opus"])
    }

    @Test func mergeAACIntoWebMBecomesOpus() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/merged.webm"
        let r = try await Media.merge(
            video: f.videoOnlyWebM, audio: f.audioOnlyM4A, output: out, container: .webm,
            subtitles: [SubtitleInput(path: f.vtt)])
        #expect(r.transcoded.contains("audio 0: aac -> opus"))
        let info = try await Media.probe(out)
        #expect(info.streams.map(\.codec) == ["vp9", "opus", "webvtt"])
        #expect(info.audioStreams.first?.sampleRate == 48000)
        // The audio (3 s) is the longer stream; Opus pads by less than a 25 fps frame.
        #expect(abs((info.duration ?? 0) - 3.0) <= 0.041)
    }

    @Test func mergeH264IntoWebMIsRefused() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        await expectMediaError({
            if case .unsupportedCodec(let codec, _, let message) = $0 { return codec == "h264" && message.contains("mkv") }
            return false
        }) { () async throws(MediaError) in
            _ = try await Media.merge(video: f.videoOnlyMP4, audio: f.audioOnlyWebM, output: dir + "/x.webm", container: .webm)
        }
        #expect(listing(dir).isEmpty)
    }

    @Test func mergeNeedsAudio() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        await expectMediaError({ $0 == .noStream(path: f.videoOnlyMP4, kind: .audio) }) { () async throws(MediaError) in
            _ = try await Media.merge(video: f.videoOnlyMP4, audio: f.videoOnlyMP4, output: dir + "/x.mp4", container: .mp4)
        }
    }

    @Test func audioToM4ACopiesAAC() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/a.m4a"
        let r = try await Media.extractAudio(
            input: f.h264aac, output: out, format: .m4a,
            tags: MediaTags(title: "Song", artist: "Channel"))
        #expect(r.transcoded.isEmpty)
        #expect(r.dropped.isEmpty)
        let info = try await Media.probe(out)
        #expect(info.streams.map(\.codec) == ["aac"])
        #expect(abs((info.duration ?? 0) - 3.0) <= 0.05)
        #expect(info.tag("title") == "Song")
        #expect(info.tag("artist") == "Channel")
    }

    @Test func audioOpusToM4AIsEncoded() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/a.m4a"
        let r = try await Media.extractAudio(input: f.vp9opus, output: out, format: .m4a)
        #expect(r.transcoded == ["audio 1: opus -> aac"])
        let info = try await Media.probe(out)
        #expect(info.streams.map(\.codec) == ["aac"])
        #expect(abs((info.duration ?? 0) - 2.0) <= 0.05)
    }

    @Test func audioToMP3() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/a.mp3"
        let log = ProgressLog()
        let r = try await Media.extractAudio(
            input: f.h264aac, output: out, format: .mp3,
            tags: MediaTags(title: "Song", artist: "Channel", comment: "https://example.com/x"),
            progress: { log.add($0) })
        #expect(r.transcoded == ["audio 1: aac -> mp3"])
        let info = try await Media.probe(out)
        #expect(info.streams.map(\.codec) == ["mp3"])
        #expect(abs((info.duration ?? 0) - 3.0) <= 0.06)
        #expect(info.tag("title") == "Song")
        #expect(info.tag("artist") == "Channel")
        #expect(log.all.last == 1.0)
        #expect(fileBytes(out, count: 3) == Array("ID3".utf8))
    }

    @Test func vttToSRT() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/subs.en.srt"
        try await Media.convertSubtitles(input: f.vtt, output: out)
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(
            text.contains("1\r\n00:00:01,000 --> 00:00:02,500\r\nHello from the fixture")
                || text.contains("1\n00:00:01,000 --> 00:00:02,500\nHello from the fixture"))
        #expect(text.contains("00:00:02,600 --> 00:00:02,900"))
        let info = try await Media.probe(out)
        #expect(info.subtitleStreams.first?.codec == "subrip")
    }

    @Test func chaptersCarryOver() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/c.mkv"
        let r = try await Media.remux(input: f.chapters, output: out, container: .mkv)
        #expect(r.output.chapters.map(\.title) == ["Opening", "Ending"])
    }

    @Test func cancellationRemovesPartialOutput() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        let gate = CancelGate()
        let task = Task { () async throws -> ConversionResult in
            try await Media.merge(
                video: f.videoOnlyMP4, audio: f.audioOnlyWebM, output: dir + "/x.mkv", container: .mp4,
                progress: { p in if p > 0.1 { gate.fire() } })
        }
        gate.attach(task)
        let result = await task.result
        guard case .failure(let e) = result else {
            Issue.record("expected cancellation")
            return
        }
        #expect(e as? MediaError == .cancelled)
        #expect(listing(dir).isEmpty)
    }

    @Test func cancellationDuringEncoding() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        let gate = CancelGate()
        let task = Task { () async throws -> ConversionResult in
            try await Media.extractAudio(
                input: f.h264aac, output: dir + "/a.mp3", format: .mp3,
                progress: { p in if p > 0.2 { gate.fire() } })
        }
        gate.attach(task)
        let result = await task.result
        guard case .failure(let e) = result else {
            Issue.record("expected cancellation")
            return
        }
        #expect(e as? MediaError == .cancelled)
        #expect(listing(dir).isEmpty)
    }

    @Test func remuxWritesVideoContainersOnly() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        await expectMediaError({
            if case .invalidArgument = $0 { return true }; return false
        }) { () async throws(MediaError) in
            _ = try await Media.remux(input: f.h264aac, output: dir + "/a.mp3", container: .mp3)
        }
        #expect(listing(dir).isEmpty)
    }

    @Test func alreadyCancelledTaskDoesNothing() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        let task = Task { () async throws -> ConversionResult in
            withUnsafeCurrentTask { $0?.cancel() }
            return try await Media.remux(input: f.h264aac, output: dir + "/x.mkv", container: .mkv)
        }
        let result = await task.result
        if case .failure(let e) = result { #expect(e as? MediaError == .cancelled) } else { Issue.record("expected cancellation") }
        #expect(listing(dir).isEmpty)
    }

    @Test func replacesExistingOutputAtomically() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        let out = dir + "/same.mkv"
        try "old".write(toFile: out, atomically: true, encoding: .utf8)
        _ = try await Media.remux(input: f.vp9opus, output: out, container: .mkv)
        #expect(try await Media.probe(out).streams.count == 2)
        #expect(listing(dir) == ["same.mkv"])
    }
}

/// Cancels a task from the operation thread once the operation is under way.
final class CancelGate: @unchecked Sendable {
    // Sendable: both fields are only touched under `lock`.
    private let lock = NSLock()
    private var task: Task<ConversionResult, any Error>?
    private var fired = false

    func attach(_ t: Task<ConversionResult, any Error>) {
        lock.lock()
        task = t
        let f = fired
        lock.unlock()
        if f { t.cancel() }
    }

    func fire() {
        lock.lock()
        fired = true
        let t = task
        lock.unlock()
        t?.cancel()
    }
}

@Suite("mp4 index placement")
struct IndexPlacementTests {
    /// Offsets of the top-level boxes of an MP4.
    static func topLevelBoxes(_ path: String) throws -> [(type: String, size: Int)] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var boxes: [(type: String, size: Int)] = []
        var pos = 0
        while pos + 8 <= data.count {
            let size = data[pos..<pos + 4].reduce(0) { $0 << 8 | Int($1) }
            boxes.append((String(decoding: data[pos + 4..<pos + 8], as: UTF8.self), size))
            if size < 8 { break }
            pos += size
        }
        return boxes
    }

    @Test func reservedIndexComesFirst() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/r.mp4"
        _ = try await Media.remux(input: f.h264aac, output: out, container: .mp4)
        let boxes = try Self.topLevelBoxes(out)
        #expect(boxes.map(\.type) == ["ftyp", "moov", "free", "free", "mdat"])
        // The unused part of the reservation is a free box.
        #expect(boxes.count > 2 && boxes[2].size > 8)
    }

    @Test func tooSmallReservationFallsBackToFaststart() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        let out = dir + "/small.mp4"
        let log = ProgressLog()
        let r = try await LibAVThread.run("test") { flag throws(MediaError) in
            try Media.convert(
                output: out, container: .mp4, tags: .none, progress: { log.add($0) }, flag: flag,
                reservation: IndexReservation(bytesPerSample: 0, fixedBytes: 64)
            ) { conv throws(MediaError) in
                let file = try InputFile(path: f.h264aac, flag: flag)
                try conv.addAll(of: conv.addInput(file))
                return file
            }
        }
        #expect(r.output.streams.map(\.codec) == ["h264", "aac"])
        let boxes = try Self.topLevelBoxes(out)
        // Written by the faststart pass: the index first, no reserved space.
        #expect(boxes.map(\.type) == ["ftyp", "moov", "free", "mdat"])
        #expect(boxes.count > 2 && boxes[2].size == 8)
        #expect(listing(dir) == ["small.mp4"])
        #expect(log.all == log.all.sorted() && log.all.last == 1.0)
    }
}
