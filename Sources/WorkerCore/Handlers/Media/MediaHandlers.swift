import Foundation
import JSON
import Media

extension HandlerRegistry {
    /// `media.convert` and `media.thumbnail`.
    mutating func registerMediaHandlers() {
        register("media.convert", MediaConvertHandler(), schema: MediaConvertHandler.schema)
        register("media.thumbnail", MediaThumbnailHandler(), schema: MediaThumbnailHandler.schema)
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

/// `media.convert {path, format, cut?, chapters?}`: remuxes a video into mp4, mkv or webm, or extracts the audio into
/// m4a or mp3, beside the input (`name.format`; `name.converted.format` when that is the input itself).
/// `cut` [{start, end}] removes ranges and `chapters` [{start, end?, title}] sets the chapters (video only),
/// as `Media.remux` does them (see Media.swift).
struct MediaConvertHandler: JobHandler {
    static let schema = PayloadSchema([
        .required("path", .nonEmptyString, note: "the input, absolute or relative to paths.library"),
        .required("format", .oneOf(OutputContainer.allCases.map(\.rawValue)), note: "the output container"),
        .optional(
            "cut",
            .array(
                of: .object([.required("start", .number(min: 0)), .required("end", .number(min: 0))]),
                count: 0...EditPlan.maxRanges),
            note: "ranges to remove, seconds; video formats only"),
        .optional(
            "chapters",
            .array(
                of: .object([
                    .required("start", .number(min: 0)), .optional("end", .number(min: 0)),
                    .required("title", .string(length: 1...1000)),
                ]), count: 0...EditPlan.maxChapters),
            note: "chapters to write, seconds in the input's time; video formats only"),
    ])

    /// The payload's `cut` and `chapters` (checked by the schema).
    static func edit(_ payload: JSONValue) -> EditRequest {
        var edit = EditRequest()
        if case .array(let items)? = payload.given("cut") {
            edit.cut = items.compactMap { item in
                guard let a = item.given("start")?.doubleValue, let b = item.given("end")?.doubleValue else { return nil }
                return TimeRange(start: a, end: b)
            }
        }
        if case .array(let items)? = payload.given("chapters") {
            edit.chapters = items.compactMap { item in
                guard let a = item.given("start")?.doubleValue, let t = item.given("title")?.stringValue else { return nil }
                return ChapterMark(start: a, end: item.given("end")?.doubleValue, title: t)
            }
        }
        return edit
    }

    func run(_ context: JobContext) async throws -> JSONValue {
        let library = context.services.configuration.paths.library
        try Self.schema.check(context.payload)
        guard let path = context.payload.given("path")?.stringValue,
            let container = context.payload.given("format")?.stringValue.flatMap(OutputContainer.init(rawValue:))
        else {
            throw JobFailure.permanent("payload.path and payload.format are required")  // unreachable after the check
        }
        let input = try LibraryPath.resolve(path, library: library)
        var output = ((input as NSString).deletingPathExtension as NSString).appendingPathExtension(container.rawValue)!
        if output == input {
            output = ((input as NSString).deletingPathExtension as NSString).appendingPathExtension("converted.\(container.rawValue)")!
        }
        output = try LibraryPath.resolve(output, library: library, mustExist: false)
        let edit = Self.edit(context.payload)
        if !edit.isEmpty && !container.holdsVideo {
            throw JobFailure.permanent("payload.cut and payload.chapters apply to mp4, mkv and webm, not \(container.rawValue)")
        }
        await context.report(Progress(stage: "converting", percent: 0))
        // One ordered stream of reports, drained before the job ends (no report can trail the result).
        let pump = ProgressPump(context: context)
        let progress = pump.media(stage: "converting", range: 0...100)
        let result: ConversionResult
        do {
            if let audio = AudioFormat(rawValue: container.rawValue) {
                result = try await Media.extractAudio(input: input, output: output, format: audio, progress: progress)
            } else {
                result = try await Media.remux(input: input, output: output, container: container, edit: edit, progress: progress)
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
            ("removed", .array(result.removed.map { .object([("start", .number(String($0.start))), ("end", .number(String($0.end)))]) })),
            ("removedSeconds", .number(String((result.removedSeconds * 1000).rounded() / 1000))),
            ("chapters", .number(String(result.output.chapters.count))),
            ("notes", .array(result.editNotes.map { .string($0) })),
        ])
    }
}

/// `media.thumbnail {path, at?, width?, format?, mode?}`: writes `name-thumb.jpg` (or .png) beside the
/// input. `at` is seconds (default: 10 % of the duration); `width` is 16–7680 pixels (default: the
/// video's); `format` is jpeg (default; `jpg` is the same) or png; `mode` is keyframe (default),
/// exact or poster.
struct MediaThumbnailHandler: JobHandler {
    /// Widths the thumbnailer scales to.
    static let widths = 16...7680

    static let schema = PayloadSchema([
        .required("path", .nonEmptyString, note: "the video, absolute or relative to paths.library"),
        .optional("at", .number(min: 0), note: "seconds into the video; absent: 10 % of its duration"),
        .optional("width", .integer(min: widths.lowerBound, max: widths.upperBound), note: "pixels; absent: the video's width"),
        .optional("format", .oneOf(["jpeg", "jpg", "png"]), note: "absent: jpeg; jpg is the same as jpeg"),
        .optional("mode", .oneOf(ThumbnailMode.allCases.map(\.rawValue)), note: "absent: keyframe"),
    ])

    func run(_ context: JobContext) async throws -> JSONValue {
        let library = context.services.configuration.paths.library
        let payload = context.payload
        try Self.schema.check(payload)
        // Checked above: each default below stands for an absent (or null) field only.
        guard let path = payload.given("path")?.stringValue else { throw JobFailure.permanent("payload.path is required") }
        let input = try LibraryPath.resolve(path, library: library)
        let format: ThumbnailFormat = payload.given("format")?.stringValue == "png" ? .png : .jpeg
        let mode = payload.given("mode")?.stringValue.flatMap(ThumbnailMode.init(rawValue:)) ?? .keyframe
        let at: ThumbnailTime = payload.given("at")?.doubleValue.map { .seconds($0) } ?? .fraction(0.1)
        let width = payload.given("width")?.intValue
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
