import Foundation
import Testing

@testable import Media

@Suite("thumbnails")
struct ThumbnailTests {
    static let jpegMagic: [UInt8] = [0xFF, 0xD8, 0xFF]
    static let pngMagic: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    @Test func keyframeJPEGScaled() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/t.jpg"
        let r = try await Media.thumbnail(
            input: f.h264aac, output: out, at: .fraction(0.5), width: 320,
            format: .jpeg, mode: .keyframe)
        #expect(r.width == 320 && r.height == 180)
        #expect(abs(r.time - 1.0) < 0.01)  // keyframes every second; 1.5 s lands on 1.0 s
        #expect(fileBytes(out, count: 3) == Self.jpegMagic)
        let info = try await Media.probe(out)
        #expect(info.videoStreams.first?.width == 320)
        #expect(info.videoStreams.first?.height == 180)
    }

    @Test func exactPNG() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/t.png"
        let r = try await Media.thumbnail(
            input: f.h264aac, output: out, at: .seconds(1.5), width: nil,
            format: .png, mode: .exact)
        #expect(r.width == 640 && r.height == 360)
        #expect(abs(r.time - 1.5) <= frame30)
        #expect(fileBytes(out, count: 8) == Self.pngMagic)
        let info = try await Media.probe(out)
        #expect(info.videoStreams.first?.codec == "png")
        #expect(info.videoStreams.first?.width == 640)
    }

    @Test func exactVP9() async throws {
        let f = try Fixtures.get()
        let out = try outputDir() + "/t.jpg"
        let r = try await Media.thumbnail(input: f.vp9opus, output: out, at: .seconds(1.2), width: 160, mode: .exact)
        #expect(r.width == 160 && r.height == 120)
        #expect(abs(r.time - 1.2) <= 0.021)
        #expect(fileBytes(out, count: 3) == Self.jpegMagic)
    }

    @Test func posterSkipsBlackIntro() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        let k = try await Media.thumbnail(input: f.blackIntro, output: dir + "/k.jpg", at: .seconds(0), width: 160, mode: .keyframe)
        #expect(k.time < 0.01)
        let p = try await Media.thumbnail(input: f.blackIntro, output: dir + "/p.jpg", at: .seconds(0), width: 160, mode: .poster)
        #expect(p.time >= 2.0)
        #expect(fileBytes(dir + "/p.jpg", count: 3) == Self.jpegMagic)
    }

    @Test func timePastTheEndGivesTheLastFrames() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        let k = try await Media.thumbnail(input: f.h264aac, output: dir + "/k.png", at: .seconds(99), format: .png, mode: .keyframe)
        #expect(abs(k.time - 2.0) < 0.01)  // the last keyframe
        let e = try await Media.thumbnail(input: f.h264aac, output: dir + "/e.png", at: .fraction(1), format: .png, mode: .exact)
        #expect(e.time > 2.9)  // the last frame
    }

    @Test func widthOutOfRange() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        await expectMediaError({
            if case .invalidArgument = $0 { return true }; return false
        }) { () async throws(MediaError) in
            _ = try await Media.thumbnail(input: f.h264aac, output: dir + "/t.jpg", width: 4)
        }
        #expect(listing(dir).isEmpty)
    }

    @Test func audioOnlyHasNoVideo() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        await expectMediaError({ $0 == .noStream(path: f.audioOnlyM4A, kind: .video) }) { () async throws(MediaError) in
            _ = try await Media.thumbnail(input: f.audioOnlyM4A, output: dir + "/t.jpg")
        }
        #expect(listing(dir).isEmpty)
    }
}
