import Foundation
import Media

extension HandlerRegistry {
    /// `media.convert` and `media.thumbnail`.
    mutating func registerMediaHandlers() {
        register("media.convert", MediaConvertHandler())
        register("media.thumbnail", MediaThumbnailHandler())
    }
}

/// Turns a media failure into the job's failure: broken or unsupported inputs are permanent,
/// cancellation is rethrown as such.
func jobFailure(_ error: MediaError) -> Error {
    if case .cancelled = error { return CancellationError() }
    switch error {
    case .writeFailed: return JobFailure.retryable(error.description)  // e.g. a full disk
    default: return JobFailure.permanent(error.description)
    }
}

/// `media.convert {path, format}`: remuxes a video into mp4, mkv or webm, or extracts the audio into
/// m4a or mp3, beside the input (`name.format`; `name.converted.format` when that is the input itself).
struct MediaConvertHandler: JobHandler {
    func run(_ context: JobContext) async throws -> JSONValue {
        let library = context.services.configuration.paths.library
        guard let path = context.payload["path"]?.stringValue else { throw JobFailure.permanent("the payload needs 'path'") }
        guard let formatName = context.payload["format"]?.stringValue, let container = OutputContainer(rawValue: formatName) else {
            throw JobFailure.permanent("the payload needs 'format': one of mp4, mkv, webm, m4a, mp3")
        }
        let input = try LibraryPath.resolve(path, library: library)
        var output = ((input as NSString).deletingPathExtension as NSString).appendingPathExtension(container.rawValue)!
        if output == input {
            output = ((input as NSString).deletingPathExtension as NSString).appendingPathExtension("converted.\(container.rawValue)")!
        }
        output = try LibraryPath.resolve(output, library: library, mustExist: false)
        await context.report(Progress(stage: "converting", percent: 0))
        // One ordered stream of reports, drained before the job ends (no report can trail the result).
        let pump = ProgressPump(context: context)
        let progress = pump.media(stage: "converting", range: 0...100)
        let result: ConversionResult
        do {
            if let audio = AudioFormat(rawValue: container.rawValue) {
                result = try await Media.extractAudio(input: input, output: output, format: audio, progress: progress)
            } else {
                result = try await Media.remux(input: input, output: output, container: container, progress: progress)
            }
            await pump.finish()
        } catch {
            await pump.finish()
            throw jobFailure(error)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? NSNumber)?.int64Value ?? 0
        return .object([
            ("path", .string(output)), ("size", .number(String(size))),
            ("duration", result.output.duration.map { .number(String($0)) } ?? .null),
            ("transcoded", .array(result.transcoded.map { .string($0) })),
            ("dropped", .array(result.dropped.map { .string($0) })),
        ])
    }
}

/// `media.thumbnail {path, at?, width?, format?, mode?}`: writes `name-thumb.jpg` (or .png) beside the
/// input. `at` is seconds (default: 10 % of the duration); `mode` is keyframe (default), exact or poster.
struct MediaThumbnailHandler: JobHandler {
    func run(_ context: JobContext) async throws -> JSONValue {
        let library = context.services.configuration.paths.library
        guard let path = context.payload["path"]?.stringValue else { throw JobFailure.permanent("the payload needs 'path'") }
        let input = try LibraryPath.resolve(path, library: library)
        let format = ThumbnailFormat(rawValue: context.payload["format"]?.stringValue ?? "jpeg") ?? .jpeg
        let mode = ThumbnailMode(rawValue: context.payload["mode"]?.stringValue ?? "keyframe") ?? .keyframe
        let at: ThumbnailTime
        if let seconds = context.payload["at"]?.doubleValue {
            guard seconds >= 0 else { throw JobFailure.permanent("'at' must be a time in seconds ≥ 0") }
            at = .seconds(seconds)
        } else {
            at = .fraction(0.1)
        }
        let width = context.payload["width"]?.intValue
        if let width, !(16...7680).contains(width) { throw JobFailure.permanent("'width' must be between 16 and 7680 pixels") }
        let output = try LibraryPath.resolve(
            (input as NSString).deletingPathExtension + "-thumb." + (format == .png ? "png" : "jpg"), library: library, mustExist: false)
        await context.report(Progress(stage: "thumbnail", percent: 0))
        do {
            let result = try await Media.thumbnail(input: input, output: output, at: at, width: width, format: format, mode: mode)
            return .object([
                ("path", .string(output)), ("width", .number(String(result.width))),
                ("height", .number(String(result.height))), ("time", .number(String(result.time))),
            ])
        } catch {
            throw jobFailure(error)
        }
    }
}
