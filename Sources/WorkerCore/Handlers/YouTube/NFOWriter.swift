import Foundation
import YtDlp

/// Kodi/Jellyfin `.nfo` files for downloads: `episodedetails` when the video belongs to a channel
/// (the channel is the show), `movie` otherwise; both with `<uniqueid type="youtube">` (or the
/// extractor's name for other sites).
enum NFOWriter {
    /// What the file describes.
    struct Fields: Sendable {
        var title: String
        var channel: String?
        var id: String
        var extractor: String
        var date: String?
        var description: String?
        var duration: Double?
        var url: String?
        var tags: [String]
        var playlist: String?
        var index: Int?
        /// The thumbnail's file name, beside the `.nfo`.
        var thumbnail: String?
    }

    static func document(_ f: Fields) -> String {
        let root = f.channel == nil ? "movie" : "episodedetails"
        var lines = ["<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>", "<\(root)>"]
        func add(_ tag: String, _ value: String?, attributes: String = "") {
            guard let value, !value.isEmpty else { return }
            lines.append("  <\(tag)\(attributes)>\(escape(value))</\(tag)>")
        }
        add("title", f.title)
        if let channel = f.channel {
            add("showtitle", channel)
            add("studio", channel)
        }
        add("plot", f.description)
        if let date = f.date {
            add(root == "movie" ? "premiered" : "aired", date)
            add("year", String(date.prefix(4)))
        }
        if let duration = f.duration, duration > 0 { add("runtime", String(max(Int((duration / 60).rounded()), 1))) }
        if let playlist = f.playlist { add("set", playlist) }
        if let index = f.index, root == "episodedetails" { add("episode", String(index)) }
        let idType =
            f.extractor.hasPrefix("youtube")
            ? "youtube"
            : String(
                f.extractor.lowercased().unicodeScalars.filter {
                    CharacterSet.alphanumerics.contains($0) || $0 == "_"
                }.prefix(32).map(Character.init))
        add("uniqueid", f.id, attributes: " type=\"\(idType.isEmpty ? "source" : idType)\" default=\"true\"")
        for tag in f.tags.prefix(50) { add("tag", tag) }
        add("thumb", f.thumbnail, attributes: " aspect=\"thumb\"")
        if let url = f.url { lines.append("  <!-- source: \(escapeComment(url)) -->") }
        lines.append("</\(root)>")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Text as XML character data: markup characters escaped, characters XML 1.0 forbids dropped.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                let v = scalar.value
                let allowed =
                    v == 0x9 || v == 0xA || v == 0xD || (0x20...0xD7FF).contains(v)
                    || (0xE000...0xFFFD).contains(v) || (0x10000...0x10FFFF).contains(v)
                if allowed { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// Text safe inside `<!-- -->`.
    static func escapeComment(_ s: String) -> String {
        escape(s).replacingOccurrences(of: "--", with: "%2D%2D")
    }
}
