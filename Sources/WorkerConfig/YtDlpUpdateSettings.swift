import Foundation
import JSON
import Yams

/// Key `youtube.update`: how a managed yt-dlp (`youtube.yt_dlp: managed`) keeps itself current
/// (contract section 13).
package struct YtDlpUpdateSettings: Sendable, Equatable {
    /// `stable` (the newest release), `nightly` (pre-releases too) or `off` (no scheduled update).
    package var channel: String
    /// Time between two scheduled updates on each host (default 1 day).
    package var every: Double
    /// Queue the scheduled `youtube.update` jobs go to (default `default`).
    package var queue: String
    /// pip's `--index-url` (a private mirror); pip's own default (PyPI) when nil. May carry
    /// credentials: shown masked in the resolved configuration.
    package var indexURL: String?
    /// pip's `--find-links` (folders of wheels or URLs); with `index_url: none`, the only source.
    package var findLinks: [String]
    /// No index at all (`index_url: none`): only `find_links` (an offline host, tests).
    package var noIndex: Bool
    /// The Python that creates the venvs (default `python3` in PATH).
    package var python: String

    package static let channels = ["stable", "nightly", "off"]

    package init(
        channel: String = "off", every: Double = 86400, queue: String = "default", indexURL: String? = nil,
        findLinks: [String] = [], noIndex: Bool = false, python: String = "python3"
    ) {
        self.channel = channel
        self.every = every
        self.queue = queue
        self.indexURL = indexURL
        self.findLinks = findLinks
        self.noIndex = noIndex
        self.python = python
    }
}

extension YouTubeSettings {
    /// The `youtube.yt_dlp` value that asks for a yt-dlp of the daemon's own.
    package static let managedName = "managed"
    /// Whether the daemon keeps its own yt-dlp (`yt_dlp: managed`) under `paths.state`.
    package var managed: Bool { ytDlp == Self.managedName }
}

extension ConfigLoader {
    /// `youtube.yt_dlp: managed` and `youtube.update {channel, every, queue, index_url, find_links, python}`.
    /// Scheduled updates need a managed yt-dlp: one installed by the system is not the daemon's to replace.
    static func youtubeUpdate(_ section: Section, _ youtube: inout YouTubeSettings, reader: ConfigReader) throws(ConfigError) {
        if section["yt_dlp"] != nil, youtube.ytDlp.trimmingWhitespace().lowercased() == YouTubeSettings.managedName {
            youtube.ytDlp = YouTubeSettings.managedName
        }
        var update = YtDlpUpdateSettings(channel: youtube.managed ? "stable" : "off")
        defer { youtube.update = update }
        guard let node = section["update"], !reader.isNull(node),
            let settings = try reader.section(
                node, key: section.path("update"), known: ["channel", "every", "queue", "index_url", "find_links", "python"])
        else { return }
        if let channel = settings["channel"] {
            update.channel = try reader.choice(channel, key: settings.path("channel"), YtDlpUpdateSettings.channels)
            if update.channel != "off" && !youtube.managed {
                throw reader.error(
                    settings.path("channel"),
                    "updates need youtube.yt_dlp: managed (a yt-dlp the daemon keeps under paths.state); a yt-dlp installed "
                        + "by the system is updated with pip install -U \"yt-dlp[default]\" — set channel: off or yt_dlp: managed",
                    at: channel)
            }
        }
        if let every = settings["every"], !reader.isNull(every) {
            update.every = try reader.duration(every, key: settings.path("every"), minimum: 1, exclusive: false)
        }
        if let queue = settings["queue"] {
            update.queue = try reader.string(queue, key: settings.path("queue"), expected: "a queue name")
        }
        if let index = settings["index_url"], !reader.isNull(index) {
            let text = try reader.string(index, key: settings.path("index_url"), expected: "an http:// or https:// URL, or none")
            if text == "none" {
                update.noIndex = true
            } else {
                update.indexURL = try httpURL(index, key: settings.path("index_url"), reader: reader)
            }
        }
        if let links = settings["find_links"], !reader.isNull(links) {
            let key = settings.path("find_links")
            let expected = "folders (absolute paths) or http(s) URLs of wheels"
            for (index, (link, item)) in try reader.stringList(links, key: key, expected: expected).enumerated() {
                let itemKey = "\(key)[\(index)]"
                if link.hasPrefix("/") {
                    _ = try reader.absolutePath(item, key: itemKey)
                } else if let problem = httpURLProblem(link) {
                    throw reader.error(itemKey, "expected \(expected): \(problem)", at: item)
                }
                update.findLinks.append(link)
            }
        }
        if update.noIndex && update.findLinks.isEmpty {
            throw reader.error(
                settings.path("index_url"), "index_url: none needs find_links (where the wheels are)", at: settings["index_url"])
        }
        if let python = settings["python"] {
            update.python = try reader.string(python, key: settings.path("python"), expected: "a Python 3 command or its path")
        }
    }

    /// `youtube.update.queue` names a configured queue (checked once the queues are read).
    static func checkUpdateQueue(_ configuration: WorkerConfiguration, _ top: Section, reader: ConfigReader) throws(ConfigError) {
        let update = configuration.youtube.update
        guard configuration.youtube.managed, update.channel != "off",
            !configuration.queues.contains(where: { $0.name == update.queue })
        else { return }
        let known = configuration.queues.map(\.name).joined(separator: ", ")
        throw reader.error(
            "youtube.update.queue",
            "the youtube.update jobs go to the queue \(JSONText.quote(update.queue, escapingNonPrintable: true)), which is not "
                + "configured (queues: \(known)); set youtube.update.queue",
            at: top["youtube"])
    }
}
