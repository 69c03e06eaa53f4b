import CAVShims
import CLibAV

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Owners of libav objects. Each frees its object in deinit, so every path out of
// an operation (success, error, cancellation) releases everything it allocated.
// None of them is Sendable: they live and die on one operation thread.

final class Packet {
    let ptr: UnsafeMutablePointer<AVPacket>
    init() throws(MediaError) {
        guard let p = av_packet_alloc() else { throw .libav(operation: "allocate packet", message: "out of memory") }
        ptr = p
    }
    deinit {
        var p: UnsafeMutablePointer<AVPacket>? = ptr
        av_packet_free(&p)
    }
}

final class Frame {
    let ptr: UnsafeMutablePointer<AVFrame>
    init() throws(MediaError) {
        guard let p = av_frame_alloc() else { throw .libav(operation: "allocate frame", message: "out of memory") }
        ptr = p
    }
    deinit {
        var p: UnsafeMutablePointer<AVFrame>? = ptr
        av_frame_free(&p)
    }
}

final class CodecContext {
    let ptr: UnsafeMutablePointer<AVCodecContext>
    let codec: UnsafePointer<AVCodec>
    init(_ codec: UnsafePointer<AVCodec>) throws(MediaError) {
        guard let p = avcodec_alloc_context3(codec) else {
            throw .libav(operation: "allocate codec context", message: "out of memory")
        }
        ptr = p
        self.codec = codec
    }
    deinit {
        var p: UnsafeMutablePointer<AVCodecContext>? = ptr
        avcodec_free_context(&p)
    }
    var name: String { String(cString: codec.pointee.name) }

    /// A decoder for a stream, opened.
    static func decoder(
        for stream: UnsafeMutablePointer<AVStream>, threads: Int32 = 1,
        configure: (UnsafeMutablePointer<AVCodecContext>) -> Void = { _ in }
    )
        throws(MediaError) -> CodecContext
    {
        let par = stream.pointee.codecpar!
        let codecName = String(cString: avcodec_get_name(par.pointee.codec_id))
        guard let codec = avcodec_find_decoder(par.pointee.codec_id) else {
            throw .decodeFailed(codec: codecName, message: "this libav build has no decoder for it")
        }
        let ctx = try CodecContext(codec)
        var ret = avcodec_parameters_to_context(ctx.ptr, par)
        if ret < 0 { throw .decodeFailed(codec: codecName, message: AVErr.message(ret)) }
        ctx.ptr.pointee.pkt_timebase = stream.pointee.time_base
        ctx.ptr.pointee.thread_count = threads
        configure(ctx.ptr)
        ret = avcodec_open2(ctx.ptr, codec, nil)
        if ret < 0 { throw .decodeFailed(codec: codecName, message: AVErr.message(ret)) }
        return ctx
    }
}

final class ScaleContext {
    let ptr: OpaquePointer
    init(
        srcW: Int32, srcH: Int32, srcFormat: AVPixelFormat,
        dstW: Int32, dstH: Int32, dstFormat: AVPixelFormat, flags: Int32
    ) throws(MediaError) {
        guard let p = sws_getContext(srcW, srcH, srcFormat, dstW, dstH, dstFormat, flags, nil, nil, nil) else {
            throw .libav(operation: "scale", message: "libswscale cannot convert \(srcW)x\(srcH) to \(dstW)x\(dstH)")
        }
        ptr = p
    }
    deinit { sws_freeContext(ptr) }
}

final class ResampleContext {
    let ptr: OpaquePointer
    init(
        outLayout: inout AVChannelLayout, outFormat: AVSampleFormat, outRate: Int32,
        inLayout: inout AVChannelLayout, inFormat: AVSampleFormat, inRate: Int32
    ) throws(MediaError) {
        var swr: OpaquePointer?
        var ret = swr_alloc_set_opts2(&swr, &outLayout, outFormat, outRate, &inLayout, inFormat, inRate, 0, nil)
        guard ret >= 0, let s = swr else {
            throw .libav(operation: "configure resampler", message: AVErr.message(ret))
        }
        ret = swr_init(s)
        if ret < 0 {
            swr_free(&swr)
            throw .libav(operation: "open resampler", message: AVErr.message(ret))
        }
        ptr = s
    }
    deinit {
        var p: OpaquePointer? = ptr
        swr_free(&p)
    }
}

final class AudioFifo {
    let ptr: OpaquePointer
    init(format: AVSampleFormat, channels: Int32) throws(MediaError) {
        guard let p = av_audio_fifo_alloc(format, channels, 4096) else {
            throw .libav(operation: "allocate audio buffer", message: "out of memory")
        }
        ptr = p
    }
    deinit { av_audio_fifo_free(ptr) }
}

/// A dictionary owned for the duration of a call.
final class Dictionary {
    var ptr: OpaquePointer?
    init(_ pairs: [(String, String)] = []) {
        for (k, v) in pairs { av_dict_set(&ptr, k, v, 0) }
    }
    deinit { av_dict_free(&ptr) }
}

/// Reads all entries of an AVDictionary.
func dictionaryEntries(_ dict: OpaquePointer?) -> [String: String] {
    var out: [String: String] = [:]
    guard let dict else { return out }
    var entry: UnsafeMutablePointer<AVDictionaryEntry>? = nil
    while true {
        entry = av_dict_get(dict, "", entry, AV_DICT_IGNORE_SUFFIX)
        guard let e = entry else { break }
        out[String(cString: e.pointee.key)] = String(cString: e.pointee.value)
    }
    return out
}

let noPTS = cav_nopts_value()
let timeBaseQ = cav_time_base_q()

func seconds(_ ts: Int64, _ tb: AVRational) -> Double? {
    guard ts != noPTS, tb.den != 0 else { return nil }
    return Double(ts) * Double(tb.num) / Double(tb.den)
}

func kind(of type: AVMediaType) -> StreamKind {
    switch type {
    case AVMEDIA_TYPE_VIDEO: return .video
    case AVMEDIA_TYPE_AUDIO: return .audio
    case AVMEDIA_TYPE_SUBTITLE: return .subtitle
    case AVMEDIA_TYPE_DATA: return .data
    case AVMEDIA_TYPE_ATTACHMENT: return .attachment
    default: return .unknown
    }
}

func codecName(_ id: AVCodecID) -> String { String(cString: avcodec_get_name(id)) }

/// An open input file.
final class InputFile {
    private(set) var ctx: UnsafeMutablePointer<AVFormatContext>
    let path: String

    /// Opens `path`. `findStreamInfo` reads ahead to fill in codec parameters the
    /// header leaves out; it can be skipped where the header is known to be complete.
    init(path: String, flag: CancelFlag, findStreamInfo: Bool = true) throws(MediaError) {
        self.path = path
        try flag.check()
        var st = stat()
        if stat(path, &st) != 0 {
            if errno == ENOENT || errno == ENOTDIR { throw .fileNotFound(path: path) }
            throw .openFailed(path: path, message: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw .openFailed(path: path, message: "it is a directory")
        }
        if st.st_size == 0 {
            throw .invalidMedia(path: path, message: "the file is empty")
        }
        guard var c = avformat_alloc_context() else {
            throw .libav(operation: "allocate input", message: "out of memory")
        }
        cav_flag_attach(flag.raw, c)
        cav_log_clear()
        var opt: UnsafeMutablePointer<AVFormatContext>? = c
        var ret = avformat_open_input(&opt, path, nil, nil)
        if ret < 0 {
            // avformat_open_input freed the context on failure.
            throw MediaError.open(path, ret)
        }
        c = opt!
        ctx = c
        // From here on a throw runs deinit, which closes the input.
        if findStreamInfo {
            ret = avformat_find_stream_info(c, nil)
            if ret < 0 { throw MediaError.read(path, ret) }
        }
        if c.pointee.nb_streams == 0 {
            throw .invalidMedia(path: path, message: "no streams found")
        }
    }

    deinit {
        var p: UnsafeMutablePointer<AVFormatContext>? = ctx
        avformat_close_input(&p)
    }

    /// Opens an input for a conversion. For H.264 and HEVC in MP4/MOV or
    /// Matroska the header carries every parameter a muxer needs (the codec
    /// configuration record), so the read-ahead of avformat_find_stream_info,
    /// which decodes frames, is skipped. VP9 and AV1 need it (their MP4 sample
    /// entry wants the pixel format), and so does every other format.
    static func forCopy(path: String, flag: CancelFlag) throws(MediaError) -> InputFile {
        let file = try InputFile(path: path, flag: flag, findStreamInfo: false)
        let name = file.formatName
        let isMOV = name.hasPrefix("mov,")
        let headerComplete =
            (isMOV || name.hasPrefix("matroska"))
            && file.streams.allSatisfy { s in
                let par = s.pointee.codecpar.pointee
                // A fragmented MP4 (DASH) has no sample table in its header: its
                // start time and duration need the read-ahead.
                if isMOV && s.pointee.nb_frames <= 0 && par.codec_type != AVMEDIA_TYPE_DATA { return false }
                switch par.codec_type {
                case AVMEDIA_TYPE_VIDEO:
                    return (par.codec_id == AV_CODEC_ID_H264 || par.codec_id == AV_CODEC_ID_HEVC)
                        && par.extradata_size > 0 && par.width > 0 && par.height > 0
                case AVMEDIA_TYPE_AUDIO:
                    return par.codec_id != AV_CODEC_ID_NONE && par.sample_rate > 0 && par.ch_layout.nb_channels > 0
                default:
                    return true
                }
            }
        if !headerComplete { try file.findStreamInfo() }
        return file
    }

    /// Reads ahead to fill in codec parameters (for inputs opened without it).
    func findStreamInfo() throws(MediaError) {
        cav_log_clear()
        let ret = avformat_find_stream_info(ctx, nil)
        if ret < 0 { throw MediaError.read(path, ret) }
    }

    var streams: [UnsafeMutablePointer<AVStream>] {
        (0..<Int(ctx.pointee.nb_streams)).map { ctx.pointee.streams[$0]! }
    }

    var formatName: String { String(cString: ctx.pointee.iformat.pointee.name) }

    /// Duration in seconds, from the container or else the longest stream.
    var duration: Double? {
        if ctx.pointee.duration != noPTS, ctx.pointee.duration > 0 {
            return Double(ctx.pointee.duration) / Double(AV_TIME_BASE)
        }
        let d = streams.compactMap { seconds($0.pointee.duration, $0.pointee.time_base) }.max()
        return d
    }

    /// The start time in AV_TIME_BASE units: the container's, else the earliest
    /// stream's (when opened without read-ahead), else 0.
    var startTime: Int64 {
        let s = ctx.pointee.start_time
        if s != noPTS { return s }
        let starts = streams.compactMap { st -> Int64? in
            let t = st.pointee.start_time
            return t == noPTS ? nil : av_rescale_q(t, st.pointee.time_base, timeBaseQ)
        }
        return starts.min() ?? 0
    }

    /// The best stream of a kind, as av_find_best_stream chooses it; attached
    /// pictures (cover art) never count as video.
    func bestStream(_ type: AVMediaType) -> UnsafeMutablePointer<AVStream>? {
        let idx = av_find_best_stream(ctx, type, -1, -1, nil, 0)
        if idx >= 0 {
            let s = ctx.pointee.streams[Int(idx)]!
            if type != AVMEDIA_TYPE_VIDEO || (s.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC) == 0 { return s }
        }
        return streams.first {
            $0.pointee.codecpar.pointee.codec_type == type
                && (type != AVMEDIA_TYPE_VIDEO || ($0.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC) == 0)
        }
    }
}

/// An output written under a temporary name beside the target and renamed into
/// place by `commit()`. If it is released uncommitted, the temporary file is removed.
final class OutputFile {
    let path: String
    let tempPath: String
    private(set) var ctx: UnsafeMutablePointer<AVFormatContext>
    private var opened = false
    private var committed = false

    init(path: String, muxer: String) throws(MediaError) {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        if base.isEmpty { throw .invalidArgument("the output path \(path) names no file") }
        var st = stat()
        if stat(dir.isEmpty ? "/" : dir, &st) != 0 || (st.st_mode & S_IFMT) != S_IFDIR {
            throw .writeFailed(path: path, message: "the folder \(dir) does not exist")
        }
        tempPath = "\(dir)/.\(base).part-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var c: UnsafeMutablePointer<AVFormatContext>?
        let ret = avformat_alloc_output_context2(&c, nil, muxer, tempPath)
        guard ret >= 0, let c else {
            throw .libav(operation: "create \(muxer) muxer", message: AVErr.message(ret))
        }
        ctx = c
    }

    deinit {
        if opened && ctx.pointee.pb != nil { avio_closep(&ctx.pointee.pb) }
        avformat_free_context(ctx)
        if opened && !committed { unlink(tempPath) }
    }

    var needsGlobalHeader: Bool { (ctx.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER) != 0 }

    func addStream() throws(MediaError) -> UnsafeMutablePointer<AVStream> {
        guard let s = avformat_new_stream(ctx, nil) else {
            throw .libav(operation: "add output stream", message: "out of memory")
        }
        return s
    }

    /// Opens the temporary file and writes the container header.
    func begin(flag: CancelFlag, options: [(String, String)]) throws(MediaError) {
        try flag.check()
        if (ctx.pointee.oformat.pointee.flags & AVFMT_NOFILE) == 0 {
            var cb = cav_flag_interrupt(flag.raw)
            cav_log_clear()
            let ret = avio_open2(&ctx.pointee.pb, tempPath, AVIO_FLAG_WRITE, &cb, nil)
            if ret < 0 { throw MediaError.write(path, ret) }
        }
        opened = true
        cav_flag_attach(flag.raw, ctx)
        let opts = Dictionary(options)
        cav_log_clear()
        let ret = avformat_write_header(ctx, &opts.ptr)
        if ret < 0 { throw MediaError.write(path, ret) }
    }

    func write(_ pkt: UnsafeMutablePointer<AVPacket>) throws(MediaError) {
        let ret = av_interleaved_write_frame(ctx, pkt)
        if ret < 0 { throw MediaError.write(path, ret) }
    }

    /// Writes the trailer, closes the file and renames it into place.
    func commit() throws(MediaError) {
        cav_log_clear()
        var ret = av_write_trailer(ctx)
        if ret < 0 { throw MediaError.write(path, ret) }
        if ctx.pointee.pb != nil {
            ret = avio_closep(&ctx.pointee.pb)
            if ret < 0 { throw MediaError.write(path, ret) }
        }
        try renameIntoPlace(tempPath, path)
        committed = true
    }
}

func renameIntoPlace(_ temp: String, _ final: String) throws(MediaError) {
    if rename(temp, final) != 0 {
        let msg = String(cString: strerror(errno))
        unlink(temp)
        throw .writeFailed(path: final, message: msg)
    }
}
