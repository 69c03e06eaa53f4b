import CAVShims
import CLibAV

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the module does with a stream of a given codec in a given container.
/// The rules are stated in the comment at the top of Media.swift.
enum CodecRules {
    static let textSubtitleProp = AV_CODEC_PROP_TEXT_SUB

    static func isTextSubtitle(_ id: AVCodecID) -> Bool {
        guard let d = avcodec_descriptor_get(id) else { return false }
        return (d.pointee.props & textSubtitleProp) != 0
    }

    static func videoCopyAllowed(_ id: AVCodecID, in c: OutputContainer, muxer: UnsafePointer<AVOutputFormat>) -> Bool {
        switch c {
        case .mp4:
            return [
                AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AV_CODEC_ID_AV1, AV_CODEC_ID_VP9,
                AV_CODEC_ID_MPEG4, AV_CODEC_ID_MPEG2VIDEO,
            ].contains(id)
        case .webm:
            return [AV_CODEC_ID_VP8, AV_CODEC_ID_VP9, AV_CODEC_ID_AV1].contains(id)
        case .mkv:
            return avformat_query_codec(muxer, id, FF_COMPLIANCE_NORMAL) == 1
        case .m4a, .mp3:
            return false
        }
    }

    static func audioCopyAllowed(_ id: AVCodecID, in c: OutputContainer, muxer: UnsafePointer<AVOutputFormat>) -> Bool {
        switch c {
        case .mp4:
            return [
                AV_CODEC_ID_AAC, AV_CODEC_ID_MP3, AV_CODEC_ID_OPUS, AV_CODEC_ID_AC3,
                AV_CODEC_ID_EAC3, AV_CODEC_ID_ALAC,
            ].contains(id)
        case .m4a: return id == AV_CODEC_ID_AAC
        case .webm: return id == AV_CODEC_ID_OPUS || id == AV_CODEC_ID_VORBIS
        case .mp3: return id == AV_CODEC_ID_MP3
        case .mkv: return avformat_query_codec(muxer, id, FF_COMPLIANCE_NORMAL) == 1
        }
    }

    static func audioEncoder(for c: OutputContainer) -> AudioEncoderChoice {
        switch c {
        case .webm: return .opus
        case .mp3: return .mp3
        case .mp4, .mkv, .m4a: return .aac
        }
    }

    enum SubtitleAction { case copy, transcode(AVCodecID), drop(String) }

    static func subtitleAction(_ id: AVCodecID, in c: OutputContainer) -> SubtitleAction {
        let text = isTextSubtitle(id)
        switch c {
        case .mp4:
            if id == AV_CODEC_ID_MOV_TEXT { return .copy }
            return text ? .transcode(AV_CODEC_ID_MOV_TEXT) : .drop("bitmap subtitles cannot go into mp4")
        case .webm:
            if id == AV_CODEC_ID_WEBVTT { return .copy }
            return text ? .transcode(AV_CODEC_ID_WEBVTT) : .drop("bitmap subtitles cannot go into webm")
        case .mkv:
            if [
                AV_CODEC_ID_SUBRIP, AV_CODEC_ID_ASS, AV_CODEC_ID_SSA, AV_CODEC_ID_DVD_SUBTITLE,
                AV_CODEC_ID_HDMV_PGS_SUBTITLE, AV_CODEC_ID_DVB_SUBTITLE,
            ].contains(id) {
                return .copy
            }
            return text ? .transcode(AV_CODEC_ID_SUBRIP) : .drop("mkv does not take \(codecName(id)) subtitles")
        case .m4a, .mp3:
            return .drop("\(c.rawValue) holds audio only")
        }
    }

    /// ISO 639-2 (bibliographic) for a two-letter code or a `en-US` style tag.
    static func language(_ code: String) -> String {
        let base = code.split(whereSeparator: { $0 == "-" || $0 == "_" }).first.map(String.init)?.lowercased() ?? code
        let map: [String: String] = [
            "en": "eng", "fr": "fre", "de": "ger", "es": "spa", "it": "ita", "pt": "por", "ru": "rus",
            "ja": "jpn", "ko": "kor", "zh": "chi", "ar": "ara", "hi": "hin", "nl": "dut", "sv": "swe",
            "no": "nor", "nb": "nob", "da": "dan", "fi": "fin", "pl": "pol", "tr": "tur", "cs": "cze",
            "el": "gre", "he": "heb", "hu": "hun", "id": "ind", "th": "tha", "uk": "ukr", "vi": "vie",
            "ro": "rum", "bg": "bul", "hr": "hrv", "sk": "slo", "sl": "slv", "sr": "srp", "ca": "cat",
            "fa": "per", "ms": "may", "ta": "tam", "bn": "ben", "ur": "urd",
        ]
        return map[base] ?? base
    }
}

/// Keys of copied metadata that describe the old file rather than the content.
private func isStaleKey(_ key: String) -> Bool {
    let k = key.lowercased()
    return k == "encoder" || k == "duration" || k == "major_brand" || k == "minor_version"
        || k == "compatible_brands" || k == "bps" || k.hasPrefix("number_of_") || k.hasPrefix("_statistics")
}

private func copyMetadata(from src: OpaquePointer?, to dst: inout OpaquePointer?) {
    for (k, v) in dictionaryEntries(src) where !isStaleKey(k) {
        av_dict_set(&dst, k, v, 0)
    }
}

/// Room reserved at the start of an MP4 for its index.
struct IndexReservation {
    var bytesPerSample = 24
    var fixedBytes = 65536
    static let standard = IndexReservation()
}

/// Reads packets from one or more inputs, interleaved by time, and writes the
/// chosen streams into one output: copied, or re-encoded where the rules say so.
final class Converter {
    enum Route {
        case copy(UnsafeMutablePointer<AVStream>)
        case audio(AudioTranscoder)
        case subtitle(SubtitleTranscoder)
    }

    final class Input {
        let file: InputFile
        var routes: [Int32: Route] = [:]
        var lastTime = -Double.infinity
        var done = false
        var lastPacketCorrupt = false
        let offset: Int64
        init(_ file: InputFile) {
            self.file = file
            offset = -file.startTime
        }
    }

    let output: OutputFile
    let container: OutputContainer
    private(set) var inputs: [Input] = []
    private(set) var transcoded: [String] = []
    private(set) var dropped: [String] = []
    /// Cuts and chapters to apply (nothing by default: a plain copy).
    var edit: EditRequest = .none
    /// The plan applied, snapped to keyframes (nil when `edit` is empty).
    private(set) var plan: EditPlan?
    private var muxer: UnsafePointer<AVOutputFormat> { UnsafePointer(output.ctx.pointee.oformat) }

    init(output path: String, container: OutputContainer) throws(MediaError) {
        self.container = container
        output = try OutputFile(path: path, muxer: container.muxerName)
    }

    @discardableResult
    func addInput(_ file: InputFile) -> Input {
        let i = Input(file)
        inputs.append(i)
        return i
    }

    private func describe(_ s: UnsafeMutablePointer<AVStream>) -> String {
        "\(kind(of: s.pointee.codecpar.pointee.codec_type).rawValue) \(s.pointee.index): \(codecName(s.pointee.codecpar.pointee.codec_id))"
    }

    private func addCopy(_ s: UnsafeMutablePointer<AVStream>, of input: Input) throws(MediaError) {
        let os = try output.addStream()
        let ret = avcodec_parameters_copy(os.pointee.codecpar, s.pointee.codecpar)
        if ret < 0 { throw .libav(operation: "copy stream parameters", message: AVErr.message(ret)) }
        os.pointee.codecpar.pointee.codec_tag = 0
        os.pointee.time_base = s.pointee.time_base
        os.pointee.avg_frame_rate = s.pointee.avg_frame_rate
        os.pointee.r_frame_rate = s.pointee.r_frame_rate
        os.pointee.sample_aspect_ratio = s.pointee.sample_aspect_ratio
        os.pointee.disposition = s.pointee.disposition & ~AV_DISPOSITION_ATTACHED_PIC
        copyMetadata(from: s.pointee.metadata, to: &os.pointee.metadata)
        input.routes[s.pointee.index] = .copy(os)
    }

    /// Adds a video stream: copied, or refused when the container cannot hold it.
    func addVideo(_ s: UnsafeMutablePointer<AVStream>, of input: Input) throws(MediaError) {
        let id = s.pointee.codecpar.pointee.codec_id
        guard CodecRules.videoCopyAllowed(id, in: container, muxer: muxer) else {
            let hint: String
            switch container {
            case .webm: hint = "WebM takes VP8, VP9 or AV1 video only; choose mp4 or mkv for this file"
            case .mp4: hint = "MP4 here takes H.264, HEVC, AV1, VP9 or MPEG-4 video; choose mkv for this file"
            default: hint = "the container does not accept this video codec and video is never re-encoded"
            }
            throw .unsupportedCodec(codec: codecName(id), container: container.rawValue, message: hint)
        }
        try addCopy(s, of: input)
    }

    /// Adds an audio stream: copied when the container takes its codec, else encoded.
    func addAudio(_ s: UnsafeMutablePointer<AVStream>, of input: Input) throws(MediaError) {
        let id = s.pointee.codecpar.pointee.codec_id
        if CodecRules.audioCopyAllowed(id, in: container, muxer: muxer) {
            try addCopy(s, of: input)
            return
        }
        let t = try AudioTranscoder(input: s, output: output, choice: CodecRules.audioEncoder(for: container))
        copyMetadata(from: s.pointee.metadata, to: &t.outStream.pointee.metadata)
        t.outStream.pointee.disposition = s.pointee.disposition & AV_DISPOSITION_DEFAULT
        input.routes[s.pointee.index] = .audio(t)
        transcoded.append(t.summary)
    }

    /// Adds a subtitle stream: copied, converted to the container's text codec, or dropped.
    func addSubtitle(_ s: UnsafeMutablePointer<AVStream>, of input: Input, language: String? = nil, title: String? = nil) throws(MediaError)
    {
        let id = s.pointee.codecpar.pointee.codec_id
        let os: UnsafeMutablePointer<AVStream>
        switch CodecRules.subtitleAction(id, in: container) {
        case .drop(let why):
            dropped.append("\(describe(s)) (\(why))")
            return
        case .copy:
            try addCopy(s, of: input)
            guard case .copy(let o) = input.routes[s.pointee.index] else { return }
            os = o
        case .transcode(let target):
            let t = try SubtitleTranscoder(input: s, output: output, encoder: target)
            copyMetadata(from: s.pointee.metadata, to: &t.outStream.pointee.metadata)
            input.routes[s.pointee.index] = .subtitle(t)
            transcoded.append(t.summary)
            os = t.outStream
        }
        if let language, !language.isEmpty {
            av_dict_set(&os.pointee.metadata, "language", CodecRules.language(language), 0)
        }
        if let title, !title.isEmpty { av_dict_set(&os.pointee.metadata, "title", title, 0) }
    }

    /// Adds every stream of an input the container can take (remux).
    func addAll(of input: Input) throws(MediaError) {
        for s in input.file.streams {
            let par = s.pointee.codecpar.pointee
            switch par.codec_type {
            case AVMEDIA_TYPE_VIDEO:
                if (s.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC) != 0 {
                    dropped.append("\(describe(s)) (cover art is not carried over)")
                } else if container.holdsVideo {
                    try addVideo(s, of: input)
                } else {
                    dropped.append("\(describe(s)) (\(container.rawValue) holds audio only)")
                }
            case AVMEDIA_TYPE_AUDIO:
                try addAudio(s, of: input)
            case AVMEDIA_TYPE_SUBTITLE:
                try addSubtitle(s, of: input)
            default:
                dropped.append("\(describe(s)) (not carried over)")
            }
        }
    }

    /// Writes the output. `metadataFrom` supplies global tags and chapters;
    /// `tags` are laid over them.
    /// Set when an MP4's reserved index space proved too small (the caller then
    /// writes the file again with a faststart pass).
    private(set) var indexReservationTooSmall = false

    func run(
        flag: CancelFlag, tags: MediaTags, metadataFrom: InputFile?,
        progress reporter: ProgressReporter, reservation: IndexReservation?
    ) throws(MediaError) {
        let octx = output.ctx
        if octx.pointee.nb_streams == 0 {
            throw .invalidArgument("nothing to write: no stream of the input can go into \(container.rawValue)")
        }
        if let src = metadataFrom {
            copyMetadata(from: src.ctx.pointee.metadata, to: &octx.pointee.metadata)
            if container != .mp3 {
                let ret = cav_copy_chapters(octx, src.ctx, src.startTime)
                if ret < 0 { throw .libav(operation: "copy chapters", message: AVErr.message(ret)) }
            }
        }
        for (k, v) in tags.pairs {
            av_dict_set(&octx.pointee.metadata, k, v.isEmpty ? nil : v, 0)
        }
        // Streams nobody reads are skipped by the demuxers.
        for input in inputs {
            for s in input.file.streams where input.routes[s.pointee.index] == nil {
                s.pointee.discard = AVDISCARD_ALL
            }
        }

        let duration = inputs.compactMap { $0.file.duration }.max() ?? 0
        if !edit.isEmpty {
            let p = try makePlan(duration: duration, metadataFrom: metadataFrom, flag: flag)
            plan = p
            if container != .mp3 {
                cav_clear_chapters(octx)
                for (i, c) in p.chapters.enumerated() {
                    let ret = cav_add_chapter(
                        octx, Int64(i + 1), Int64((c.start * 1000).rounded()), Int64((c.end * 1000).rounded()), c.title)
                    if ret < 0 { throw .libav(operation: "add chapter", message: AVErr.message(ret)) }
                }
            }
        }
        let cutting = plan.map { !$0.cutsNothing } ?? false
        let reference = cutting ? referenceVideo() : nil
        var dropVideoUntil: [Int32: Double] = [:]
        var lastDTS: [Int32: Int64] = [:]
        var options: [(String, String)] = []
        if container == .mp4 || container == .m4a {
            // The index (moov) goes before the media data. Reserving room for it
            // up front writes the file once; +faststart would write it, then
            // read and rewrite all of it to move the index forward.
            if let reservation, let size = indexReservation(reservation, duration: duration, tags: tags) {
                options.append(("moov_size", String(size)))
            } else {
                options.append(("movflags", "+faststart"))
            }
        }
        try output.begin(flag: flag, options: options)
        reporter.duration = duration
        let pkt = try Packet()
        let p = pkt.ptr
        let out = output
        let write: (UnsafeMutablePointer<AVPacket>) throws(MediaError) -> Void = { pk throws(MediaError) in try out.write(pk) }

        while true {
            try flag.check()
            var next: Input?
            for i in inputs where !i.done && (next == nil || i.lastTime < next!.lastTime) { next = i }
            guard let input = next else { break }
            let ret = av_read_frame(input.file.ctx, p)
            if ret == AVErr.eof {
                if input.lastPacketCorrupt {
                    // libavformat marks a packet cut short by the end of the file.
                    throw .invalidMedia(path: input.file.path, message: "the file is truncated: its last packet is incomplete")
                }
                input.done = true
                continue
            }
            if ret < 0 { throw MediaError.read(input.file.path, ret) }
            defer { av_packet_unref(p) }
            input.lastPacketCorrupt = (p.pointee.flags & AV_PKT_FLAG_CORRUPT) != 0
            guard let route = input.routes[p.pointee.stream_index] else { continue }
            let st = input.file.ctx.pointee.streams[Int(p.pointee.stream_index)]!
            let tb = st.pointee.time_base
            if input.offset != 0 {
                let off = av_rescale_q(input.offset, timeBaseQ, tb)
                if p.pointee.pts != noPTS { p.pointee.pts += off }
                if p.pointee.dts != noPTS { p.pointee.dts += off }
            }
            if let t = seconds(p.pointee.dts != noPTS ? p.pointee.dts : p.pointee.pts, tb) {
                input.lastTime = max(input.lastTime, t)
                reporter.update(seconds: t)
            }
            if cutting, let plan {
                let ts = p.pointee.pts != noPTS ? p.pointee.pts : p.pointee.dts
                guard let t = seconds(ts, tb) else { continue }
                let idx = p.pointee.stream_index
                let at: Double
                if let reference, reference.input === input, reference.index == idx {
                    // Video: stop at the first packet (decode order) inside a
                    // removed range, resume at the keyframe the plan was snapped to.
                    if let until = dropVideoUntil[idx] {
                        if (p.pointee.flags & AV_PKT_FLAG_KEY) != 0 && t >= until - 0.0005 {
                            dropVideoUntil[idx] = nil
                        } else {
                            continue
                        }
                    } else if let end = plan.removedEnd(containing: t) {
                        dropVideoUntil[idx] = end
                        continue
                    }
                    at = t
                } else {
                    // Audio, subtitles: dropped when their middle is in a removed range.
                    let d = p.pointee.duration > 0 ? (seconds(p.pointee.duration, tb) ?? 0) : 0
                    at = t + d / 2
                    if plan.isRemoved(at) { continue }
                }
                let shift = plan.shift(at: at)
                if shift > 0 {
                    let off = Int64((shift / av_q2d(tb)).rounded())
                    if p.pointee.pts != noPTS { p.pointee.pts -= off }
                    if p.pointee.dts != noPTS { p.pointee.dts -= off }
                }
            }
            switch route {
            case .copy(let os):
                av_packet_rescale_ts(p, tb, os.pointee.time_base)
                p.pointee.stream_index = os.pointee.index
                p.pointee.pos = -1
                if cutting {
                    // Frames on either side of a cut can meet at one decode time.
                    let oi = os.pointee.index
                    if p.pointee.dts != noPTS {
                        if let last = lastDTS[oi], p.pointee.dts <= last { p.pointee.dts = last + 1 }
                        if p.pointee.pts != noPTS && p.pointee.pts < p.pointee.dts { p.pointee.pts = p.pointee.dts }
                        lastDTS[oi] = p.pointee.dts
                    }
                }
                try output.write(p)
            case .audio(let t):
                try t.feed(p, write: write)
            case .subtitle(let t):
                try t.feed(p, write: write)
            }
        }
        try flag.check()
        for input in inputs {
            for route in input.routes.values {
                if case .audio(let t) = route { try t.finish(write: write) }
            }
        }
        do {
            try output.commit()
        } catch {
            if case .writeFailed(_, let message) = error, message.contains("reserved_moov_size is too small") {
                indexReservationTooSmall = true
            }
            throw error
        }
    }

    /// The copied video stream the cuts are snapped to (the first one).
    private func referenceVideo() -> (input: Input, index: Int32)? {
        for input in inputs {
            for s in input.file.streams {
                guard s.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO,
                    case .copy = input.routes[s.pointee.index]
                else { continue }
                return (input, s.pointee.index)
            }
        }
        return nil
    }

    /// The requested plan, its cuts moved to the video's keyframes: each removed
    /// range ends at the first keyframe at or after its end (or the end of the
    /// file), so nothing of it is shown. Keyframe times come from one read of the
    /// video stream's packets (no decoding), done only when there is something to cut.
    private func makePlan(duration: Double, metadataFrom: InputFile?, flag: CancelFlag) throws(MediaError) -> EditPlan {
        var own: [ChapterMark] = []
        if edit.chapters == nil, let src = metadataFrom {
            for i in 0..<Int(src.ctx.pointee.nb_chapters) {
                let c = src.ctx.pointee.chapters[i]!.pointee
                let off = Double(src.startTime) / Double(AV_TIME_BASE)
                guard let a = seconds(c.start, c.time_base), let b = seconds(c.end, c.time_base) else { continue }
                own.append(ChapterMark(start: a - off, end: b - off, title: dictionaryEntries(c.metadata)["title"] ?? ""))
            }
        }
        let marks = edit.chapters ?? own
        let requested = EditPlan(duration: duration, remove: edit.cut, chapters: marks)
        guard !requested.cutsNothing, let ref = referenceVideo() else { return requested }
        let keyframes = try keyframeTimes(ref.input, stream: ref.index, flag: flag)
        var snapped: [TimeRange] = []
        for r in requested.removed {
            let resume = keyframes.first { $0 >= r.end - 0.0005 } ?? duration
            var range = TimeRange(start: r.start, end: max(r.end, min(resume, duration)))
            if let last = snapped.last, range.start <= last.end {
                range.start = last.start
                range.end = max(range.end, last.end)
                snapped.removeLast()
            }
            snapped.append(range)
        }
        var notes = requested.notes
        let total = snapped.reduce(0) { $0 + $1.length }
        if duration - total < EditPlan.minimumKept {
            notes.append("snapped to keyframes the cuts would leave \(Int(max(0, duration - total))) s: nothing is cut")
            snapped = []
        }
        return EditPlan(cleanRemoved: snapped, duration: duration, inputChapters: marks, notes: notes)
    }

    /// Presentation times (seconds from the input's start) of the keyframes of one stream, sorted.
    private func keyframeTimes(_ input: Input, stream: Int32, flag: CancelFlag) throws(MediaError) -> [Double] {
        let file = try InputFile(path: input.file.path, flag: flag, findStreamInfo: false)
        for s in file.streams where s.pointee.index != stream { s.pointee.discard = AVDISCARD_ALL }
        let st = file.ctx.pointee.streams[Int(stream)]!
        let tb = st.pointee.time_base
        let off = av_rescale_q(input.offset, timeBaseQ, tb)
        let pkt = try Packet()
        var times: [Double] = []
        while true {
            try flag.check()
            let ret = av_read_frame(file.ctx, pkt.ptr)
            if ret == AVErr.eof { break }
            if ret < 0 { throw MediaError.read(file.path, ret) }
            defer { av_packet_unref(pkt.ptr) }
            let p = pkt.ptr.pointee
            guard p.stream_index == stream, (p.flags & AV_PKT_FLAG_KEY) != 0 else { continue }
            let ts = p.pts != noPTS ? p.pts : p.dts
            if ts != noPTS, let t = seconds(ts + off, tb) { times.append(t) }
        }
        return times.sorted()
    }

    /// Bytes to reserve for an MP4 index: 24 per sample (the index of an H.264 +
    /// AAC file takes about 14), 64 KiB for the fixed boxes, plus the tags and
    /// chapters. nil when a stream's sample count cannot be estimated.
    private func indexReservation(_ r: IndexReservation, duration: Double, tags: MediaTags) -> Int? {
        guard duration > 0, duration < 48 * 3600 else { return nil }
        var samples = 0.0
        for input in inputs {
            for (index, route) in input.routes {
                let s = input.file.ctx.pointee.streams[Int(index)]!
                let par = s.pointee.codecpar.pointee
                var count = Double(s.pointee.nb_frames)
                if case .audio(let t) = route {
                    let e = t.enc.ptr.pointee
                    count = duration * Double(e.sample_rate) / Double(max(e.frame_size, 1))
                } else if count <= 0 {
                    switch par.codec_type {
                    case AVMEDIA_TYPE_VIDEO:
                        let fr = s.pointee.avg_frame_rate.num > 0 ? s.pointee.avg_frame_rate : s.pointee.r_frame_rate
                        guard fr.num > 0, fr.den > 0 else { return nil }
                        count = max(count, duration * av_q2d(fr))
                    case AVMEDIA_TYPE_AUDIO:
                        guard par.sample_rate > 0 else { return nil }
                        let frame = par.frame_size > 0 ? par.frame_size : 1024
                        count = max(count, duration * Double(par.sample_rate) / Double(frame))
                    default:
                        count = max(count, duration * 2)
                    }
                }
                samples += count * 1.1 + 16
            }
        }
        var extra = 0
        for (k, v) in dictionaryEntries(output.ctx.pointee.metadata) { extra += k.utf8.count + v.utf8.count + 32 }
        for (_, v) in tags.pairs { extra += v.utf8.count + 32 }
        extra += Int(output.ctx.pointee.nb_chapters) * 256
        let size = Int(samples * Double(r.bytesPerSample)) + r.fixedBytes + extra
        return size < Int(Int32.max) ? size : nil
    }
}
