import CAVShims
import CLibAV

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Grabs one video frame, scales it and writes it as a JPEG or PNG.
enum Thumbnailer {
    /// Mean luma (0–255) under which a poster candidate counts as near-black.
    static let darkLuma = 28.0
    /// How many keyframes a poster looks at before it settles for the brightest.
    static let posterCandidates = 10

    static func make(
        input: String, output: String, at time: ThumbnailTime, width: Int?,
        format: ThumbnailFormat, mode: ThumbnailMode, flag: CancelFlag
    ) throws(MediaError) -> ThumbnailResult {
        if let width, width < 16 || width > 8192 {
            throw .invalidArgument("thumbnail width \(width) is outside 16...8192")
        }
        switch time {
        case .seconds(let s) where !(s >= 0 && s.isFinite):
            throw .invalidArgument("thumbnail time \(s) s is not a time in the file")
        case .fraction(let f) where !(f >= 0 && f <= 1):
            throw .invalidArgument("thumbnail fraction \(f) is outside 0...1")
        default: break
        }
        // The headers of MP4 and Matroska carry what a single-frame decode needs;
        // read ahead only when they do not.
        let file = try InputFile(path: input, flag: flag, findStreamInfo: false)
        var stream = file.bestStream(AVMEDIA_TYPE_VIDEO)
        if stream == nil || stream!.pointee.codecpar.pointee.width <= 0 || file.duration == nil {
            try file.findStreamInfo()
            stream = file.bestStream(AVMEDIA_TYPE_VIDEO)
        }
        guard let vs = stream else { throw .noStream(path: input, kind: .video) }

        let duration = file.duration ?? 0
        var target: Double
        switch time {
        case .seconds(let s): target = s
        case .fraction(let f): target = f * duration
        }
        if duration > 0 { target = min(target, duration) }

        let grabber = try FrameGrabber(file: file, stream: vs, exact: mode == .exact, flag: flag)
        var chosen: (frame: Frame, time: Double)
        switch mode {
        case .keyframe, .exact:
            guard let g = try grabber.grab(at: target) else {
                throw .decodeFailed(codec: codecName(vs.pointee.codecpar.pointee.codec_id), message: "no frame could be decoded")
            }
            chosen = g
        case .poster:
            chosen = try poster(grabber: grabber, from: target, duration: duration, flag: flag)
        }
        try flag.check()
        return try writeImage(
            chosen.frame, time: chosen.time, width: width, format: format, output: output,
            sar: vs.pointee.sample_aspect_ratio)
    }

    private static func poster(
        grabber: FrameGrabber, from start: Double, duration: Double,
        flag: CancelFlag
    ) throws(MediaError) -> (frame: Frame, time: Double) {
        let step = max(1.0, duration * 0.05)
        var best: (frame: Frame, time: Double, luma: Double)?
        var seen = Set<Double>()
        var t = start
        for _ in 0..<posterCandidates {
            try flag.check()
            if duration > 0 && t > duration { break }
            if let g = try grabber.grab(at: t), !seen.contains(g.time) {
                seen.insert(g.time)
                let luma = try meanLuma(g.frame)
                if luma >= darkLuma { return (g.frame, g.time) }
                if best == nil || luma > best!.luma { best = (g.frame, g.time, luma) }
                // Jump past the keyframe we landed on.
                t = max(t, g.time) + step
            } else {
                t += step
            }
        }
        guard let best else { throw .decodeFailed(codec: "video", message: "no frame could be decoded") }
        return (best.frame, best.time)
    }

    /// Mean luma of a frame, from a 64-pixel-wide grey copy.
    static func meanLuma(_ frame: Frame) throws(MediaError) -> Double {
        let f = frame.ptr.pointee
        let w: Int32 = 64
        let h = max(Int32(1), Int32((Double(f.height) * 64 / Double(max(f.width, 1))).rounded()))
        let sws = try ScaleContext(
            srcW: f.width, srcH: f.height, srcFormat: AVPixelFormat(rawValue: f.format),
            dstW: w, dstH: h, dstFormat: AV_PIX_FMT_GRAY8, flags: SWS_AREA)
        let gray = try Frame()
        gray.ptr.pointee.width = w
        gray.ptr.pointee.height = h
        gray.ptr.pointee.format = AV_PIX_FMT_GRAY8.rawValue
        let ret = sws_scale_frame(sws.ptr, gray.ptr, frame.ptr)
        if ret < 0 { throw .libav(operation: "scale frame", message: AVErr.message(ret)) }
        var sum = 0
        let base = gray.ptr.pointee.data.0!
        let stride = Int(gray.ptr.pointee.linesize.0)
        for y in 0..<Int(h) {
            for x in 0..<Int(w) { sum += Int(base[y * stride + x]) }
        }
        return Double(sum) / Double(Int(w) * Int(h))
    }

    private static func writeImage(
        _ frame: Frame, time: Double, width: Int?, format: ThumbnailFormat,
        output: String, sar: AVRational
    ) throws(MediaError) -> ThumbnailResult {
        let f = frame.ptr.pointee
        var aspect = f.sample_aspect_ratio
        if aspect.num <= 0 || aspect.den <= 0 { aspect = sar }
        let sarValue = (aspect.num > 0 && aspect.den > 0) ? Double(aspect.num) / Double(aspect.den) : 1
        let displayWidth = Double(f.width) * sarValue
        var outW: Int
        var outH: Int
        if let width {
            outW = width
            outH = max(1, Int((Double(width) * Double(f.height) / displayWidth).rounded()))
        } else {
            outW = max(1, Int(displayWidth.rounded()))
            outH = Int(f.height)
        }
        let pixFmt = format == .jpeg ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_RGB24
        if format == .jpeg {
            // 4:2:0 chroma wants even sizes.
            outW = max(2, outW & ~1)
            outH = max(2, outH & ~1)
        }
        let sws = try ScaleContext(
            srcW: f.width, srcH: f.height, srcFormat: AVPixelFormat(rawValue: f.format),
            dstW: Int32(outW), dstH: Int32(outH), dstFormat: pixFmt,
            flags: SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT)
        let scaled = try Frame()
        scaled.ptr.pointee.width = Int32(outW)
        scaled.ptr.pointee.height = Int32(outH)
        scaled.ptr.pointee.format = pixFmt.rawValue
        var ret = sws_scale_frame(sws.ptr, scaled.ptr, frame.ptr)
        if ret < 0 { throw .libav(operation: "scale frame", message: AVErr.message(ret)) }

        let codecID = format == .jpeg ? AV_CODEC_ID_MJPEG : AV_CODEC_ID_PNG
        let name = format == .jpeg ? "mjpeg" : "png"
        guard let codec = avcodec_find_encoder(codecID) else {
            throw .encodeFailed(codec: name, message: "this libav build has no \(name) encoder")
        }
        let enc = try CodecContext(codec)
        let e = enc.ptr
        e.pointee.width = Int32(outW)
        e.pointee.height = Int32(outH)
        e.pointee.pix_fmt = pixFmt
        e.pointee.time_base = AVRational(num: 1, den: 25)
        if format == .jpeg {
            e.pointee.flags |= AV_CODEC_FLAG_QSCALE
            e.pointee.global_quality = FF_QP2LAMBDA * 3
            e.pointee.color_range = AVCOL_RANGE_JPEG
            scaled.ptr.pointee.quality = e.pointee.global_quality
        }
        scaled.ptr.pointee.pts = 0
        cav_log_clear()
        ret = avcodec_open2(e, codec, nil)
        if ret < 0 { throw .encodeFailed(codec: name, message: AVErr.message(ret)) }
        ret = avcodec_send_frame(e, scaled.ptr)
        if ret < 0 { throw .encodeFailed(codec: name, message: AVErr.message(ret)) }
        ret = avcodec_send_frame(e, nil)
        if ret < 0 && ret != AVErr.eof { throw .encodeFailed(codec: name, message: AVErr.message(ret)) }
        let pkt = try Packet()
        ret = avcodec_receive_packet(e, pkt.ptr)
        if ret < 0 { throw .encodeFailed(codec: name, message: AVErr.message(ret)) }
        try writeFileAtomically(output, pkt.ptr.pointee.data, Int(pkt.ptr.pointee.size))
        return ThumbnailResult(width: outW, height: outH, time: time)
    }
}

/// Decodes single frames of one video stream after seeks.
final class FrameGrabber {
    let file: InputFile
    let stream: UnsafeMutablePointer<AVStream>
    let exact: Bool
    let flag: CancelFlag
    private let dec: CodecContext
    private let pkt: Packet

    init(file: InputFile, stream: UnsafeMutablePointer<AVStream>, exact: Bool, flag: CancelFlag) throws(MediaError) {
        self.file = file
        self.stream = stream
        self.exact = exact
        self.flag = flag
        for s in file.streams where s != stream { s.pointee.discard = AVDISCARD_ALL }
        // One keyframe decodes fastest on one thread; a run of frames up to an
        // exact time gains from frame threads.
        dec = try CodecContext.decoder(for: stream, threads: exact ? 0 : 1) { c in
            if !exact { c.pointee.skip_frame = AVDISCARD_NONKEY }
        }
        pkt = try Packet()
    }

    /// The frame at `time` (seconds from the start of the file): the keyframe at or
    /// before it, or in exact mode the frame on screen at that time.
    func grab(at time: Double) throws(MediaError) -> (frame: Frame, time: Double)? {
        let tb = stream.pointee.time_base
        let start = file.startTime
        let streamStart =
            stream.pointee.start_time != noPTS
            ? stream.pointee.start_time
            : av_rescale_q(start, timeBaseQ, tb)
        let target = streamStart + Int64((time * Double(tb.den) / Double(tb.num)).rounded(.down))
        avcodec_flush_buffers(dec.ptr)
        cav_log_clear()
        var ret = avformat_seek_file(file.ctx, stream.pointee.index, Int64.min, target, target, 0)
        if ret < 0 {
            ret = avformat_seek_file(file.ctx, -1, Int64.min, start, start, 0)
            if ret < 0 { throw .invalidMedia(path: file.path, message: "cannot seek: \(AVErr.message(ret))") }
        }
        // Half a frame of tolerance so a frame starting just before `time` counts.
        let fr = stream.pointee.avg_frame_rate.num > 0 ? stream.pointee.avg_frame_rate : stream.pointee.r_frame_rate
        let half: Int64 = fr.num > 0 ? av_rescale_q(1, AVRational(num: fr.den, den: fr.num * 2), tb) : 0
        var last: Frame?
        var lastPTS: Int64 = 0
        var current = try Frame()
        let codec = dec.name
        var eof = false
        var errors = 0
        while true {
            try flag.check()
            if !eof {
                ret = av_read_frame(file.ctx, pkt.ptr)
                if ret == AVErr.eof {
                    eof = true
                    ret = avcodec_send_packet(dec.ptr, nil)
                } else if ret < 0 {
                    throw MediaError.read(file.path, ret)
                } else {
                    defer { av_packet_unref(pkt.ptr) }
                    if pkt.ptr.pointee.stream_index != stream.pointee.index { continue }
                    ret = avcodec_send_packet(dec.ptr, pkt.ptr)
                    if ret < 0 && ret != AVErr.again {
                        errors += 1
                        if errors > 50 { throw .decodeFailed(codec: codec, message: AVErr.message(ret)) }
                        continue
                    }
                }
            }
            while true {
                ret = avcodec_receive_frame(dec.ptr, current.ptr)
                if ret == AVErr.again && eof { ret = AVErr.eof }
                if ret == AVErr.again { break }
                if ret == AVErr.eof {
                    guard let last else { return nil }
                    return (last, seconds(lastPTS - streamStart, tb) ?? 0)
                }
                if ret < 0 {
                    errors += 1
                    if errors > 50 { throw .decodeFailed(codec: codec, message: AVErr.message(ret)) }
                    break
                }
                var pts = current.ptr.pointee.best_effort_timestamp
                if pts == noPTS { pts = current.ptr.pointee.pts }
                if pts == noPTS { pts = target }
                if !exact || pts + half >= target {
                    return (current, max(0, seconds(pts - streamStart, tb) ?? 0))
                }
                last = current
                lastPTS = pts
                current = try Frame()
            }
        }
    }
}

/// Writes bytes to a temporary file beside `path` and renames it into place.
func writeFileAtomically(_ path: String, _ data: UnsafePointer<UInt8>?, _ count: Int) throws(MediaError) {
    let slash = path.lastIndex(of: "/")
    let dir = slash.map { String(path[..<$0]) } ?? "."
    let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
    if base.isEmpty { throw .invalidArgument("the output path \(path) names no file") }
    let temp = "\(dir.isEmpty ? "" : dir)/.\(base).part-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    if fd < 0 { throw .writeFailed(path: path, message: String(cString: strerror(errno))) }
    var written = 0
    while written < count, let data {
        let n = posixWrite(fd, data + written, count - written)
        if n < 0 {
            if errno == EINTR { continue }
            let msg = String(cString: strerror(errno))
            close(fd)
            unlink(temp)
            throw .writeFailed(path: path, message: msg)
        }
        written += n
    }
    if close(fd) != 0 {
        let msg = String(cString: strerror(errno))
        unlink(temp)
        throw .writeFailed(path: path, message: msg)
    }
    try renameIntoPlace(temp, path)
}

private func posixWrite(_ fd: Int32, _ buf: UnsafePointer<UInt8>, _ count: Int) -> Int {
    #if canImport(Glibc)
        return Glibc.write(fd, buf, count)
    #else
        return Darwin.write(fd, buf, count)
    #endif
}
