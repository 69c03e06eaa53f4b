import Foundation
import Testing

@testable import Media

@Suite("probe")
struct ProbeTests {
    @Test func h264AACFile() async throws {
        let f = try Fixtures.get()
        let info = try await Media.probe(f.h264aac)
        #expect(info.container.contains("mp4"))
        #expect(abs((info.duration ?? 0) - 3.0) < 0.05)
        #expect(info.streams.count == 2)
        let v = try #require(info.videoStreams.first)
        #expect(v.codec == "h264")
        #expect(v.width == 640 && v.height == 360)
        #expect(abs((v.frameRate ?? 0) - 30) < 0.01)
        #expect((v.bitRate ?? 0) > 0)
        let a = try #require(info.audioStreams.first)
        #expect(a.codec == "aac")
        #expect(a.sampleRate == 48000)
        #expect(a.channels == 1)
        #expect(info.tag("title") == "Fixture Title")
        #expect((info.size ?? 0) > 1000)
    }

    @Test func vp9OpusWebM() async throws {
        let f = try Fixtures.get()
        let info = try await Media.probe(f.vp9opus)
        #expect(info.container == "matroska,webm")
        #expect(info.videoStreams.first?.codec == "vp9")
        #expect(info.audioStreams.first?.codec == "opus")
        #expect(info.videoStreams.first?.width == 320)
        #expect(abs((info.duration ?? 0) - 2.0) < 0.1)
    }

    @Test func chapters() async throws {
        let f = try Fixtures.get()
        let info = try await Media.probe(f.chapters)
        #expect(info.chapters.count == 2)
        #expect(info.chapters.first?.title == "Opening")
        #expect(abs((info.chapters.last?.start ?? 0) - 1.5) < 0.01)
    }

    @Test func subtitleFile() async throws {
        let f = try Fixtures.get()
        let info = try await Media.probe(f.vtt)
        #expect(info.subtitleStreams.first?.codec == "webvtt")
    }
}
