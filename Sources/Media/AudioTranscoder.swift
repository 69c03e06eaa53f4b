import CAVShims
import CLibAV

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The audio encoders the module uses.
enum AudioEncoderChoice {
    case aac, opus, mp3

    var encoderName: String {
        switch self {
        case .aac: return "aac"
        case .opus: return "libopus"
        case .mp3: return "libmp3lame"
        }
    }

    var codecName: String {
        switch self {
        case .aac: return "aac"
        case .opus: return "opus"
        case .mp3: return "mp3"
        }
    }

    var maxChannels: Int32 {
        switch self {
        case .aac: return 6
        case .opus, .mp3: return 2
        }
    }

    func bitRate(channels: Int32) -> Int64 {
        switch self {
        case .aac: return channels <= 1 ? 96_000 : (channels == 2 ? 192_000 : 64_000 * Int64(channels))
        case .opus: return channels <= 1 ? 64_000 : 128_000
        case .mp3: return channels <= 1 ? 128_000 : 192_000
        }
    }
}

/// Decodes one input audio stream and encodes it into one output stream:
/// decoder → libswresample → FIFO cut to the encoder's frame size → encoder.
final class AudioTranscoder {
    let inStream: UnsafeMutablePointer<AVStream>
    let outStream: UnsafeMutablePointer<AVStream>
    let dec: CodecContext
    let enc: CodecContext
    let choice: AudioEncoderChoice
    private var swr: ResampleContext?
    private let fifo: AudioFifo
    private let decoded: Frame
    private let converted: Frame
    private let encFrame: Frame
    private let outPkt: Packet
    private var nextPTS: Int64 = 0
    private var ptsKnown = false
    private let frameSize: Int32
    private var decodeErrors = 0

    init(input: UnsafeMutablePointer<AVStream>, output: OutputFile, choice: AudioEncoderChoice) throws(MediaError) {
        inStream = input
        self.choice = choice
        dec = try CodecContext.decoder(for: input)
        guard let codec = avcodec_find_encoder_by_name(choice.encoderName) else {
            throw .encodeFailed(codec: choice.codecName, message: "this libav build has no \(choice.encoderName) encoder")
        }
        enc = try CodecContext(codec)
        let e = enc.ptr

        var inChannels = dec.ptr.pointee.ch_layout.nb_channels
        if inChannels <= 0 { inChannels = input.pointee.codecpar.pointee.ch_layout.nb_channels }
        if inChannels <= 0 { inChannels = 2 }
        let outChannels = min(inChannels, choice.maxChannels)
        av_channel_layout_uninit(&e.pointee.ch_layout)
        av_channel_layout_default(&e.pointee.ch_layout, outChannels)

        var inRate = dec.ptr.pointee.sample_rate
        if inRate <= 0 { inRate = 48_000 }
        e.pointee.sample_rate = Self.pickRate(codec, inRate)
        e.pointee.sample_fmt = codec.pointee.sample_fmts?.pointee ?? AV_SAMPLE_FMT_FLTP
        e.pointee.bit_rate = choice.bitRate(channels: outChannels)
        e.pointee.time_base = AVRational(num: 1, den: e.pointee.sample_rate)
        if output.needsGlobalHeader { e.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER }
        cav_log_clear()
        var ret = avcodec_open2(e, codec, nil)
        if ret < 0 { throw .encodeFailed(codec: choice.codecName, message: AVErr.message(ret)) }
        frameSize = e.pointee.frame_size > 0 ? e.pointee.frame_size : 1024

        outStream = try output.addStream()
        ret = avcodec_parameters_from_context(outStream.pointee.codecpar, e)
        if ret < 0 { throw .encodeFailed(codec: choice.codecName, message: AVErr.message(ret)) }
        outStream.pointee.time_base = e.pointee.time_base

        fifo = try AudioFifo(format: e.pointee.sample_fmt, channels: outChannels)
        decoded = try Frame()
        converted = try Frame()
        encFrame = try Frame()
        outPkt = try Packet()
    }

    var summary: String {
        "audio \(inStream.pointee.index): \(codecName(inStream.pointee.codecpar.pointee.codec_id)) -> \(choice.codecName)"
    }

    /// The supported rate closest above `rate`, or `rate` when the encoder takes it.
    static func pickRate(_ codec: UnsafePointer<AVCodec>, _ rate: Int32) -> Int32 {
        guard let list = codec.pointee.supported_samplerates else { return rate }
        var rates: [Int32] = []
        var i = 0
        while list[i] != 0 { rates.append(list[i]); i += 1 }
        if rates.isEmpty || rates.contains(rate) { return rate }
        return rates.filter { $0 >= rate }.min() ?? rates.max()!
    }

    /// Feeds one packet (timestamps in the input stream's time base), or nil to flush.
    func feed(_ pkt: UnsafeMutablePointer<AVPacket>?, write: (UnsafeMutablePointer<AVPacket>) throws(MediaError) -> Void) throws(MediaError)
    {
        var ret = avcodec_send_packet(dec.ptr, pkt)
        if ret < 0 && ret != AVErr.eof {
            if ret == AVErr.invalidData && decodeErrors < 100 {
                decodeErrors += 1  // a damaged packet: skip it as ffmpeg does
                return
            }
            throw .decodeFailed(codec: dec.name, message: AVErr.message(ret))
        }
        while true {
            ret = avcodec_receive_frame(dec.ptr, decoded.ptr)
            if ret == AVErr.again || ret == AVErr.eof { break }
            if ret < 0 {
                if ret == AVErr.invalidData && decodeErrors < 100 { decodeErrors += 1; continue }
                throw .decodeFailed(codec: dec.name, message: AVErr.message(ret))
            }
            defer { av_frame_unref(decoded.ptr) }
            try resample(decoded.ptr)
            try drain(final: false, write: write)
        }
    }

    /// Flushes the decoder, resampler and encoder.
    func finish(write: (UnsafeMutablePointer<AVPacket>) throws(MediaError) -> Void) throws(MediaError) {
        try feed(nil, write: write)
        if swr != nil { try resample(nil) }
        try drain(final: true, write: write)
        try encode(nil, write: write)
    }

    private func resample(_ frame: UnsafeMutablePointer<AVFrame>?) throws(MediaError) {
        let e = enc.ptr
        if let frame {
            if !ptsKnown {
                ptsKnown = true
                let ts = frame.pointee.best_effort_timestamp
                if ts != noPTS {
                    nextPTS = av_rescale_q(ts, inStream.pointee.time_base, e.pointee.time_base)
                }
            }
            if swr == nil {
                var inLayout = AVChannelLayout()
                if frame.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || frame.pointee.ch_layout.nb_channels == 0 {
                    av_channel_layout_default(&inLayout, max(frame.pointee.ch_layout.nb_channels, 1))
                } else {
                    av_channel_layout_copy(&inLayout, &frame.pointee.ch_layout)
                }
                defer { av_channel_layout_uninit(&inLayout) }
                swr = try ResampleContext(
                    outLayout: &e.pointee.ch_layout, outFormat: e.pointee.sample_fmt, outRate: e.pointee.sample_rate,
                    inLayout: &inLayout, inFormat: AVSampleFormat(rawValue: frame.pointee.format),
                    inRate: frame.pointee.sample_rate)
            }
        }
        guard let swr else { return }
        let inSamples = frame?.pointee.nb_samples ?? 0
        let capacity = swr_get_out_samples(swr.ptr, inSamples) + 32
        if capacity <= 0 { return }
        let c = converted.ptr
        av_frame_unref(c)
        c.pointee.format = e.pointee.sample_fmt.rawValue
        av_channel_layout_copy(&c.pointee.ch_layout, &e.pointee.ch_layout)
        c.pointee.sample_rate = e.pointee.sample_rate
        c.pointee.nb_samples = capacity
        var ret = av_frame_get_buffer(c, 0)
        if ret < 0 { throw .libav(operation: "allocate audio", message: AVErr.message(ret)) }
        let inData: UnsafeMutablePointer<UnsafePointer<UInt8>?>? = frame.map {
            UnsafeMutableRawPointer($0.pointee.extended_data).assumingMemoryBound(to: UnsafePointer<UInt8>?.self)
        }
        let n = swr_convert(swr.ptr, c.pointee.extended_data, capacity, inData, inSamples)
        if n < 0 { throw .libav(operation: "resample audio", message: AVErr.message(n)) }
        if n > 0 {
            let out = UnsafeMutableRawPointer(c.pointee.extended_data).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
            ret = av_audio_fifo_write(fifo.ptr, out, n)
            if ret < n { throw .libav(operation: "buffer audio", message: AVErr.message(ret < 0 ? ret : AVErr.noMemory)) }
        }
        av_frame_unref(c)
    }

    private func drain(final: Bool, write: (UnsafeMutablePointer<AVPacket>) throws(MediaError) -> Void) throws(MediaError) {
        let e = enc.ptr
        let smallLast = (enc.codec.pointee.capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME) != 0
        let variable = (enc.codec.pointee.capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE) != 0
        while true {
            let available = av_audio_fifo_size(fifo.ptr)
            if available <= 0 { return }
            if available < frameSize && !final { return }
            let n = min(available, frameSize)
            let f = encFrame.ptr
            av_frame_unref(f)
            f.pointee.format = e.pointee.sample_fmt.rawValue
            av_channel_layout_copy(&f.pointee.ch_layout, &e.pointee.ch_layout)
            f.pointee.sample_rate = e.pointee.sample_rate
            f.pointee.nb_samples = (n < frameSize && !smallLast && !variable) ? frameSize : n
            var ret = av_frame_get_buffer(f, 0)
            if ret < 0 { throw .libav(operation: "allocate audio", message: AVErr.message(ret)) }
            if f.pointee.nb_samples > n {
                av_samples_set_silence(
                    f.pointee.extended_data, 0, f.pointee.nb_samples,
                    f.pointee.ch_layout.nb_channels, e.pointee.sample_fmt)
            }
            let data = UnsafeMutableRawPointer(f.pointee.extended_data).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
            ret = av_audio_fifo_read(fifo.ptr, data, n)
            if ret < n { throw .libav(operation: "buffer audio", message: "short read from the audio buffer") }
            f.pointee.pts = nextPTS
            nextPTS += Int64(f.pointee.nb_samples)
            try encode(f, write: write)
            av_frame_unref(f)
        }
    }

    private func encode(
        _ frame: UnsafeMutablePointer<AVFrame>?, write: (UnsafeMutablePointer<AVPacket>) throws(MediaError) -> Void
    ) throws(MediaError) {
        var ret = avcodec_send_frame(enc.ptr, frame)
        if ret < 0 && ret != AVErr.eof {
            throw .encodeFailed(codec: choice.codecName, message: AVErr.message(ret))
        }
        while true {
            ret = avcodec_receive_packet(enc.ptr, outPkt.ptr)
            if ret == AVErr.again || ret == AVErr.eof { return }
            if ret < 0 { throw .encodeFailed(codec: choice.codecName, message: AVErr.message(ret)) }
            outPkt.ptr.pointee.stream_index = outStream.pointee.index
            av_packet_rescale_ts(outPkt.ptr, enc.ptr.pointee.time_base, outStream.pointee.time_base)
            try write(outPkt.ptr)
            av_packet_unref(outPkt.ptr)
        }
    }
}
