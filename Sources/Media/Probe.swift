import CAVShims
import CLibAV

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum Prober {
    /// Probes `path`. `thorough` reads ahead (avformat_find_stream_info) to fill in
    /// what a header leaves out; outputs this module wrote do not need it.
    static func probe(_ path: String, flag: CancelFlag, thorough: Bool = true) throws(MediaError) -> MediaInfo {
        let file = try InputFile(path: path, flag: flag, findStreamInfo: thorough)
        return info(of: file)
    }

    static func info(of file: InputFile) -> MediaInfo {
        let ctx = file.ctx
        var streams: [StreamInfo] = []
        for s in file.streams {
            let par = s.pointee.codecpar.pointee
            let k = kind(of: par.codec_type)
            let tags = dictionaryEntries(s.pointee.metadata)
            let language = tags["language"] ?? tags.first { $0.key.lowercased() == "language" }?.value
            var profile: String?
            if let p = avcodec_profile_name(par.codec_id, par.profile) { profile = String(cString: p) }
            var fps: Double?
            if k == .video {
                let a = s.pointee.avg_frame_rate
                let r = s.pointee.r_frame_rate
                if a.num > 0 && a.den > 0 { fps = av_q2d(a) } else if r.num > 0 && r.den > 0 { fps = av_q2d(r) }
            }
            let bitRate = par.bit_rate > 0 ? Int(par.bit_rate) : nil
            streams.append(
                StreamInfo(
                    index: Int(s.pointee.index),
                    kind: k,
                    codec: codecName(par.codec_id),
                    profile: profile,
                    width: k == .video && par.width > 0 ? Int(par.width) : nil,
                    height: k == .video && par.height > 0 ? Int(par.height) : nil,
                    frameRate: fps,
                    bitRate: bitRate,
                    sampleRate: k == .audio && par.sample_rate > 0 ? Int(par.sample_rate) : nil,
                    channels: k == .audio && par.ch_layout.nb_channels > 0 ? Int(par.ch_layout.nb_channels) : nil,
                    language: language,
                    duration: s.pointee.duration > 0 ? seconds(s.pointee.duration, s.pointee.time_base) : nil,
                    isDefault: (s.pointee.disposition & AV_DISPOSITION_DEFAULT) != 0,
                    isAttachedPicture: (s.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC) != 0,
                    tags: tags))
        }
        var chapters: [ChapterInfo] = []
        for i in 0..<Int(ctx.pointee.nb_chapters) {
            let c = ctx.pointee.chapters[i]!.pointee
            let title = dictionaryEntries(c.metadata).first { $0.key.lowercased() == "title" }?.value
            chapters.append(
                ChapterInfo(
                    start: seconds(c.start, c.time_base) ?? 0,
                    end: seconds(c.end, c.time_base) ?? 0, title: title))
        }
        var size: Int64?
        var st = stat()
        if stat(file.path, &st) == 0 { size = Int64(st.st_size) }
        let iformat = ctx.pointee.iformat.pointee
        return MediaInfo(
            container: String(cString: iformat.name),
            containerLongName: iformat.long_name.map { String(cString: $0) } ?? "",
            duration: file.duration,
            bitRate: ctx.pointee.bit_rate > 0 ? Int(ctx.pointee.bit_rate) : nil,
            size: size,
            streams: streams,
            chapters: chapters,
            tags: dictionaryEntries(ctx.pointee.metadata))
    }
}
