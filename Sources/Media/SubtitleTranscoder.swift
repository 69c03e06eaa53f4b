import CAVShims
import CLibAV

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Decodes a text subtitle stream to libav's ASS events and encodes them with a
/// text subtitle encoder: `subrip`, `mov_text` or `webvtt`.
final class SubtitleTranscoder {
    let inStream: UnsafeMutablePointer<AVStream>
    let outStream: UnsafeMutablePointer<AVStream>
    let dec: CodecContext
    let enc: CodecContext
    private let outPkt: Packet
    private let buffer: UnsafeMutablePointer<UInt8>
    private let bufferSize: Int32 = 1 << 20

    init(input: UnsafeMutablePointer<AVStream>, output: OutputFile, encoder: AVCodecID) throws(MediaError) {
        inStream = input
        dec = try CodecContext.decoder(for: input)
        let target = codecName(encoder)
        guard let codec = avcodec_find_encoder(encoder) else {
            throw .encodeFailed(codec: target, message: "this libav build has no \(target) encoder")
        }
        enc = try CodecContext(codec)
        enc.ptr.pointee.time_base = AVRational(num: 1, den: 1000)
        var ret = cav_copy_subtitle_header(enc.ptr, dec.ptr)
        if ret < 0 { throw .encodeFailed(codec: target, message: AVErr.message(ret)) }
        cav_log_clear()
        ret = avcodec_open2(enc.ptr, codec, nil)
        if ret < 0 { throw .encodeFailed(codec: target, message: AVErr.message(ret)) }
        outStream = try output.addStream()
        ret = avcodec_parameters_from_context(outStream.pointee.codecpar, enc.ptr)
        if ret < 0 { throw .encodeFailed(codec: target, message: AVErr.message(ret)) }
        outStream.pointee.time_base = enc.ptr.pointee.time_base
        outPkt = try Packet()
        buffer = .allocate(capacity: Int(bufferSize))
    }

    deinit { buffer.deallocate() }

    var summary: String {
        "subtitle \(inStream.pointee.index): \(codecName(inStream.pointee.codecpar.pointee.codec_id)) -> \(enc.name)"
    }

    func feed(_ pkt: UnsafeMutablePointer<AVPacket>, write: (UnsafeMutablePointer<AVPacket>) throws(MediaError) -> Void) throws(MediaError)
    {
        var sub = AVSubtitle()
        var got: Int32 = 0
        let ret = avcodec_decode_subtitle2(dec.ptr, &sub, &got, pkt)
        if ret < 0 || got == 0 { return }  // a cue libav cannot read is left out
        defer { avsubtitle_free(&sub) }
        if sub.num_rects == 0 { return }
        var pts = sub.pts
        if pts == noPTS {
            pts = pkt.pointee.pts == noPTS ? 0 : av_rescale_q(pkt.pointee.pts, inStream.pointee.time_base, timeBaseQ)
        }
        pts += av_rescale_q(Int64(sub.start_display_time), AVRational(num: 1, den: 1000), timeBaseQ)
        sub.pts = pts
        sub.end_display_time -= sub.start_display_time
        sub.start_display_time = 0
        let n = avcodec_encode_subtitle(enc.ptr, buffer, bufferSize, &sub)
        if n < 0 { throw .encodeFailed(codec: enc.name, message: AVErr.message(n)) }
        if n == 0 { return }
        let p = outPkt.ptr
        av_packet_unref(p)
        let r = av_new_packet(p, n)
        if r < 0 { throw .libav(operation: "allocate packet", message: AVErr.message(r)) }
        memcpy(p.pointee.data, buffer, Int(n))
        let tb = outStream.pointee.time_base
        p.pointee.pts = av_rescale_q(pts, timeBaseQ, tb)
        p.pointee.dts = p.pointee.pts
        p.pointee.duration = av_rescale_q(Int64(sub.end_display_time), AVRational(num: 1, den: 1000), tb)
        p.pointee.stream_index = outStream.pointee.index
        try write(p)
        av_packet_unref(p)
    }
}
