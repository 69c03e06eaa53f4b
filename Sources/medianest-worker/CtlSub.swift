import ArgumentParser
import Foundation
import JSON
import WorkerConfig

/// `medianest-worker ctl sub list | add | remove | check | protect` (contract section 12).
struct CtlSub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sub",
        abstract: "List, add, remove, check or protect subscriptions (channels, playlists and feeds checked on their interval).",
        subcommands: [CtlSubList.self, CtlSubAdd.self, CtlSubRemove.self, CtlSubCheck.self, CtlSubProtect.self])
}

struct CtlSubList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every subscription with its item counts.")
    @OptionGroup var options: CtlOptions
    func run() throws {
        try options.send([("cmd", .string("sub")), ("action", .string("list"))]) { answer in
            let subs = CtlText.array(answer["subscriptions"])
            if subs.isEmpty { return "no subscriptions" }
            let rows = subs.map { s -> [String] in
                let items = s["items"]
                let every = s["checkEvery"]?.doubleValue.map(DurationParser.format) ?? "-"
                return [
                    CtlFormat.text(s["name"]), s["enabled"]?.boolValue == true ? "yes" : "no", every,
                    s["keepLast"]?.intValue.map(String.init) ?? "all", s["maxAge"]?.doubleValue.map(DurationParser.format) ?? "-",
                    "\(CtlFormat.text(items?["downloaded"]))/\(CtlFormat.text(items?["queued"]))/\(CtlFormat.text(items?["removed"]))",
                    s["lastCheckedAt"]?.stringValue ?? "never", s["lastError"]?.stringValue ?? "", CtlFormat.text(s["url"]),
                ]
            }
            return CtlFormat.table(
                ["NAME", "ENABLED", "EVERY", "KEEP", "MAX AGE", "DOWNLOADED/QUEUED/REMOVED", "LAST CHECK", "LAST ERROR", "URL"], rows,
                maxWidth: 60)
        }
    }
}

struct CtlSubAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Subscribe to a channel, playlist or feed; its first check starts at once.")
    @Argument(help: "The channel, playlist or feed link.") var url: String
    @Option(help: "A unique name (default: made from the link).") var name: String?
    @Option(help: "Time between checks, e.g. 30m, 6h, 1d (default 6h).") var every: String?
    @Option(name: .customLong("keep-last"), help: "Keep only the newest N downloads (default: all).") var keepLast: Int?
    @Option(name: .customLong("max-age"), help: "Remove downloads published longer ago than this, e.g. 30d (default: never).")
    var maxAge: String?
    @Option(help: "Quality: best 2160p 1440p 1080p 720p 480p 360p audio (default youtube.quality).") var quality: String?
    @Option(help: "Format: mp4 mkv webm m4a mp3 (default youtube.format).") var format: String?
    @Option(help: "The user the downloads belong to.") var user: String?
    @Option(help: "Newest entries taken at the first check (default 10).") var backfill: Int?
    @Option(help: "File name template (default youtube.output).") var output: String?
    @Option(help: "Plex collection of the downloads.") var collection: String?
    @OptionGroup var options: CtlOptions
    func run() throws {
        var request: [(String, JSONValue)] = [("cmd", .string("sub")), ("action", .string("add")), ("url", .string(url))]
        for (key, value) in [
            ("name", name), ("every", every), ("maxAge", maxAge), ("quality", quality), ("format", format), ("user", user),
            ("output", output), ("collection", collection),
        ] {
            if let value { request.append((key, .string(value))) }
        }
        if let keepLast { request.append(("keepLast", .number(String(keepLast)))) }
        if let backfill { request.append(("backfill", .number(String(backfill)))) }
        try options.send(request) { answer in
            let s = answer["subscription"]
            return "subscription \(CtlFormat.text(s?["name"])) added (id \(CtlFormat.text(s?["id"]))); its first check is queued"
        }
    }
}

struct CtlSubRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Delete a subscription and its items; the files stay in the library.")
    @Argument(help: "The subscription's name.") var name: String
    @OptionGroup var options: CtlOptions
    func run() throws {
        try options.send([("cmd", .string("sub")), ("action", .string("remove")), ("name", .string(name))]) { _ in
            "subscription \(name) removed; its files stay in the library"
        }
    }
}

struct CtlSubCheck: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Check a subscription now.")
    @Argument(help: "The subscription's name.") var name: String
    @OptionGroup var options: CtlOptions
    func run() throws {
        try options.send([("cmd", .string("sub")), ("action", .string("check")), ("name", .string(name))]) { answer in
            "check of \(name) queued as job \(CtlFormat.text(answer["jobId"]))"
        }
    }
}

struct CtlSubProtect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protect", abstract: "Keep a subscription's video whatever keep-last and max-age say (--off to lift it).")
    @Argument(help: "The subscription's name.") var name: String
    @Argument(help: "The video's key, <extractor>:<id> (e.g. youtube:dQw4w9WgXcQ).") var videoKey: String
    @Flag(help: "Lift the protection.") var off = false
    @OptionGroup var options: CtlOptions
    func run() throws {
        try options.send([
            ("cmd", .string("sub")), ("action", .string("protect")), ("name", .string(name)), ("videoKey", .string(videoKey)),
            ("protected", .bool(!off)),
        ]) { _ in off ? "\(videoKey) of \(name) is no longer protected" : "\(videoKey) of \(name) is protected from retention" }
    }
}
