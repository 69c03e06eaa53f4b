import Foundation
import Testing

@testable import Media

@Suite("broken inputs")
struct ErrorTests {
    static func isInvalidMedia(_ e: MediaError) -> Bool {
        if case .invalidMedia(_, let message) = e { return !message.isEmpty }
        return false
    }

    @Test func missingFile() async throws {
        let f = try Fixtures.get()
        await expectMediaError({ $0 == .fileNotFound(path: f.dir + "/nope.mp4") }) { () async throws(MediaError) in
            _ = try await Media.probe(f.dir + "/nope.mp4")
        }
    }

    @Test func zeroByteFile() async throws {
        let f = try Fixtures.get()
        await expectMediaError(Self.isInvalidMedia) { () async throws(MediaError) in _ = try await Media.probe(f.empty) }
    }

    @Test func textFileNamedMP4() async throws {
        let f = try Fixtures.get()
        await expectMediaError(Self.isInvalidMedia) { () async throws(MediaError) in _ = try await Media.probe(f.textAsMP4) }
        let dir = try outputDir()
        await expectMediaError(Self.isInvalidMedia) { () async throws(MediaError) in
            _ = try await Media.remux(input: f.textAsMP4, output: dir + "/o.mkv", container: .mkv)
        }
        #expect(listing(dir).isEmpty)
    }

    @Test func containerWithoutStreams() async throws {
        let f = try Fixtures.get()
        // An FFMETADATA file opens as a container but holds no stream.
        await expectMediaError({ $0 == .invalidMedia(path: f.dir + "/chapters.txt", message: "no streams found") }) {
            () async throws(MediaError) in _ = try await Media.probe(f.dir + "/chapters.txt")
        }
        let dir = try outputDir()
        await expectMediaError(Self.isInvalidMedia) { () async throws(MediaError) in
            _ = try await Media.remux(input: f.dir + "/chapters.txt", output: dir + "/o.mkv", container: .mkv)
        }
        #expect(listing(dir).isEmpty)
    }

    @Test func truncatedFileCarriesLibavMessage() async throws {
        let f = try Fixtures.get()
        do {
            _ = try await Media.probe(f.truncated)
            Issue.record("a truncated file probed fine")
        } catch {
            #expect(Self.isInvalidMedia(error))
            #expect(error.detail.contains("moov atom not found"), "\(error.detail)")
            #expect(error.description.contains(f.truncated))
        }
    }

    @Test(arguments: ["mp4", "mkv"])
    func brokenInputsLeaveNoOutput(ext: String) async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        let container = OutputContainer(rawValue: ext)!
        for input in [f.truncated, f.empty, f.textAsMP4] {
            await expectMediaError(Self.isInvalidMedia) { () async throws(MediaError) in
                _ = try await Media.remux(input: input, output: dir + "/o.\(ext)", container: container)
            }
            await expectMediaError(Self.isInvalidMedia) { () async throws(MediaError) in
                _ = try await Media.merge(video: input, audio: f.audioOnlyM4A, output: dir + "/m.\(ext)", container: container)
            }
            await expectMediaError(Self.isInvalidMedia) { () async throws(MediaError) in
                _ = try await Media.thumbnail(input: input, output: dir + "/t.jpg")
            }
            await expectMediaError(Self.isInvalidMedia) { () async throws(MediaError) in
                _ = try await Media.extractAudio(input: input, output: dir + "/a.mp3", format: .mp3)
            }
        }
        #expect(listing(dir).isEmpty)
    }

    @Test func truncatedMediaDataFailsWithoutOutput() async throws {
        let f = try Fixtures.get()
        let dir = try outputDir()
        await expectMediaError(Self.isInvalidMedia) { () async throws(MediaError) in
            _ = try await Media.remux(input: f.truncatedFaststart, output: dir + "/o.mkv", container: .mkv)
        }
        #expect(listing(dir).isEmpty)
    }

    @Test func missingOutputFolder() async throws {
        let f = try Fixtures.get()
        await expectMediaError({
            if case .writeFailed = $0 { return true }; return false
        }) { () async throws(MediaError) in
            _ = try await Media.remux(input: f.h264aac, output: f.dir + "/no/such/dir/o.mkv", container: .mkv)
        }
    }

    @Test func errorsReadAsSentences() {
        let e = MediaError.unsupportedCodec(codec: "h264", container: "webm", message: "WebM takes VP8, VP9 or AV1 video only")
        #expect(e.description == "h264 cannot be stored in webm: WebM takes VP8, VP9 or AV1 video only.")
        #expect(MediaError.cancelled.description == "The media operation was cancelled.")
    }
}
