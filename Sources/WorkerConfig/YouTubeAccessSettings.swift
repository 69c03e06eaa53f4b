import Foundation
import JSON
import Yams

/// `youtube.cookies`, `extractor_args`, `plugin_dirs`, `throttle`, and (in YtDlpUpdateSettings.swift)
/// `yt_dlp: managed` and `update`: contract section 13.
extension ConfigLoader {
    /// Largest cookies file accepted (a browser's export for one account is a few kB).
    static let cookiesLimit = 4 << 20

    static func youtubeToday(_ section: Section, _ youtube: inout YouTubeSettings, reader: ConfigReader) throws(ConfigError) {
        try youtubeUpdate(section, &youtube, reader: reader)
        try youtubeAccess(section, &youtube, reader: reader)
    }

    static func youtubeAccess(_ section: Section, _ youtube: inout YouTubeSettings, reader: ConfigReader) throws(ConfigError) {
        if let node = section["cookies"], !reader.isNull(node) {
            let path = try reader.absolutePath(node, key: section.path("cookies"))
            if let problem = cookiesProblem(path) {
                throw reader.error(section.path("cookies"), problem, at: node)
            }
            youtube.cookies = path
        }
        if let node = section["extractor_args"], !reader.isNull(node) {
            youtube.extractorArgs = try extractorArguments(node, key: section.path("extractor_args"), reader: reader)
        }
        if let node = section["plugin_dirs"], !reader.isNull(node) {
            youtube.pluginDirs = []
            let key = section.path("plugin_dirs")
            guard case .sequence(let items) = node else {
                throw reader.error(key, "expected a list of folders (absolute paths), got \(reader.describe(node))", at: node)
            }
            guard items.count <= 32 else {
                throw reader.error(key, "at most 32 plugin folders, got \(items.count)", at: node)
            }
            for (index, item) in items.enumerated() {
                let itemKey = "\(key)[\(index)]"
                let path = try reader.absolutePath(item, key: itemKey)
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                    throw reader.error(itemKey, "the folder \(JSONText.quote(path, escapingNonPrintable: true)) does not exist", at: item)
                }
                guard access(path, R_OK | X_OK) == 0 else {
                    throw reader.error(
                        itemKey, "the folder \(JSONText.quote(path, escapingNonPrintable: true)) cannot be read by this user", at: item)
                }
                if !youtube.pluginDirs.contains(path) { youtube.pluginDirs.append(path) }
            }
        }
        if let node = section["throttle"], !reader.isNull(node),
            let throttle = try reader.section(
                node, key: section.path("throttle"), known: ["sleep_requests", "sleep_interval", "max_sleep_interval", "limit_rate"])
        {
            if let inner = throttle["sleep_requests"], !reader.isNull(inner) {
                if let outer = section["sleep_requests"], !reader.isNull(outer) {
                    throw reader.error(
                        throttle.path("sleep_requests"),
                        "set once: youtube.sleep_requests is the older spelling of youtube.throttle.sleep_requests; remove one of them",
                        at: inner)
                }
                youtube.sleepRequests = try reader.duration(inner, key: throttle.path("sleep_requests"), minimum: 0, exclusive: false)
            }
            if let inner = throttle["sleep_interval"], !reader.isNull(inner) {
                youtube.sleepInterval = try reader.duration(inner, key: throttle.path("sleep_interval"), minimum: 0, exclusive: false)
            }
            if let inner = throttle["max_sleep_interval"], !reader.isNull(inner) {
                let seconds = try reader.duration(inner, key: throttle.path("max_sleep_interval"), minimum: 0, exclusive: false)
                guard let low = youtube.sleepInterval, low > 0 else {
                    throw reader.error(
                        throttle.path("max_sleep_interval"), "needs sleep_interval (the shortest pause) to be set too", at: inner)
                }
                guard seconds >= low else {
                    throw reader.error(
                        throttle.path("max_sleep_interval"),
                        "must not be shorter than sleep_interval (\(DurationParser.format(low))), got \(reader.describe(inner))", at: inner)
                }
                youtube.maxSleepInterval = seconds
            }
            if let inner = throttle["limit_rate"], !reader.isNull(inner) {
                let expected = "bytes per second such as 0 (no limit), 500K or 4M"
                let text = try reader.text(inner, key: throttle.path("limit_rate"), expected: expected)
                guard let bytes = SizeParser.parse(text), bytes >= 0 else {
                    throw reader.error(
                        throttle.path("limit_rate"), "expected \(expected), got \(reader.describe(inner, text: text))", at: inner)
                }
                youtube.limitRate = bytes == 0 ? nil : bytes
            }
        }
    }

    /// Why `path` cannot serve as yt-dlp's cookies, or nil. Messages never quote the file's contents.
    static func cookiesProblem(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else {
            return errno == ENOENT
                ? "the cookies file does not exist" : "the cookies file cannot be read (\(String(cString: strerror(errno))))"
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return "the cookies path is not a regular file" }
        guard st.st_size <= cookiesLimit else {
            return "the cookies file is larger than \(cookiesLimit >> 20) MiB; export one account's cookies"
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return "the cookies file cannot be read by this user (permission denied?)"
        }
        defer { try? handle.close() }
        let data = (try? handle.readToEnd()) ?? Data()
        guard let text = String(data: data, encoding: .utf8) else { return "the cookies file is not text (UTF-8)" }
        return NetscapeCookies.problem(text)
    }

    /// `extractor_args`: a map extractor → `"key=value;key2=v1,v2"`, → a map key → a value or a list
    /// (contract section 13), or → a list of `key=value` strings; or a list of yt-dlp's own
    /// `"extractor:key=value;..."` strings. One `--extractor-args` value per extractor.
    static func extractorArguments(_ node: Node, key: String, reader: ConfigReader) throws(ConfigError) -> [String] {
        var out: [String] = []
        switch node {
        case .sequence(let items):
            for (index, item) in items.enumerated() {
                let itemKey = "\(key)[\(index)]"
                let text = try reader.string(item, key: itemKey, expected: "extractor:key=value;key=value")
                guard let colon = text.firstIndex(of: ":") else {
                    throw reader.error(
                        itemKey,
                        "expected extractor:key=value (such as youtube:player_client=default,mweb), "
                            + "got \(reader.describe(item, text: text))",
                        at: item)
                }
                let name = String(text[..<colon])
                let rest = String(text[text.index(after: colon)...])
                try checkExtractor(name, key: itemKey, node: item, reader: reader)
                try checkPairs(rest, key: itemKey, node: item, reader: reader)
                out.append(name + ":" + rest)
            }
        case .mapping:
            for entry in try reader.entries(node, key: key, expected: "a map of extractor names to their arguments") {
                let entryKey = ConfigReader.join(key, entry.name)
                try checkExtractor(entry.name, key: entryKey, node: entry.keyNode, reader: reader)
                var pairs: [String] = []
                switch entry.value {
                case .scalar:
                    let text = try reader.string(entry.value, key: entryKey, expected: "key=value;key=value")
                    try checkPairs(text, key: entryKey, node: entry.value, reader: reader)
                    pairs = [text]
                case .sequence(let items):
                    for (index, item) in items.enumerated() {
                        let itemKey = "\(entryKey)[\(index)]"
                        let text = try reader.string(item, key: itemKey, expected: "key=value")
                        try checkPairs(text, key: itemKey, node: item, reader: reader)
                        pairs.append(text)
                    }
                case .mapping:
                    for argument in try reader.entries(entry.value, key: entryKey, expected: "a map of argument names to values") {
                        let argKey = ConfigReader.join(entryKey, argument.name)
                        guard isArgumentName(argument.name) else {
                            throw reader.error(argKey, "an argument name is 1–64 of a-z A-Z 0-9 _ -", at: argument.keyNode)
                        }
                        var values: [String] = []
                        if case .sequence(let items) = argument.value {
                            for (index, item) in items.enumerated() {
                                values.append(try value(item, key: "\(argKey)[\(index)]", reader: reader))
                            }
                        } else {
                            values.append(try value(argument.value, key: argKey, reader: reader))
                        }
                        guard !values.isEmpty else {
                            throw reader.error(argKey, "expected a value or a list of values, got an empty list", at: argument.value)
                        }
                        pairs.append(argument.name + "=" + values.joined(separator: ","))
                    }
                case .alias:
                    throw reader.error(entryKey, "unresolved alias", at: entry.value)
                }
                guard !pairs.isEmpty else { throw reader.error(entryKey, "expected at least one argument", at: entry.value) }
                out.append(entry.name + ":" + pairs.joined(separator: ";"))
            }
        default:
            throw reader.error(
                key,
                "expected a map of extractors to arguments (youtube: {player_client: [default, mweb]}) or a list, "
                    + "got \(reader.describe(node))",
                at: node)
        }
        guard out.count <= 32 else { throw reader.error(key, "at most 32 extractors, got \(out.count)", at: node) }
        return out
    }

    private static func value(_ node: Node, key: String, reader: ConfigReader) throws(ConfigError) -> String {
        let text = try reader.string(node, key: key, expected: "a value")
        guard text.utf8.count <= 1024, !text.contains(where: { $0 == ";" || $0 == "," || $0 == "\n" || $0 == "\r" || $0 == "\0" }) else {
            throw reader.error(
                key, "a value may not contain ; , or line breaks and is at most 1024 bytes, got \(reader.describe(node, text: text))",
                at: node)
        }
        return text
    }

    private static func isArgumentName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
            }
    }

    private static func checkExtractor(_ name: String, key: String, node: Node, reader: ConfigReader) throws(ConfigError) {
        guard isArgumentName(name) else {
            throw reader.error(
                key,
                "an extractor name is 1–64 of a-z A-Z 0-9 _ - (such as youtube), got \(JSONText.quote(name, escapingNonPrintable: true))",
                at: node)
        }
    }

    private static func checkPairs(_ text: String, key: String, node: Node, reader: ConfigReader) throws(ConfigError) {
        let pairs = text.split(separator: ";", omittingEmptySubsequences: false)
        guard text.utf8.count <= 4096, !text.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }), !pairs.isEmpty else {
            throw reader.error(key, "expected key=value pairs separated by ; on one line (at most 4096 bytes)", at: node)
        }
        for pair in pairs {
            let name = pair.firstIndex(of: "=").map { String(pair[..<$0]) } ?? String(pair)
            guard isArgumentName(name) else {
                throw reader.error(
                    key,
                    "expected key=value pairs separated by ; (such as player_client=default,mweb), "
                        + "got \(reader.describe(node, text: text))",
                    at: node)
            }
        }
    }
}

/// Checks that text reads as a Netscape cookies file, as yt-dlp's `--cookies` expects.
package enum NetscapeCookies {
    /// Why `text` is not a Netscape cookies file, or nil. Names line numbers only, never contents.
    package static func problem(_ text: String) -> String? {
        var cookies = 0
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if line.hasPrefix("#HttpOnly_") {
                line = line.dropFirst("#HttpOnly_".count)
            } else if line.hasPrefix("#") {
                continue
            }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            let flagsOK =
                fields.count == 7 && ["TRUE", "FALSE"].contains(fields[1].uppercased())
                && ["TRUE", "FALSE"].contains(fields[3].uppercased())
            guard flagsOK, !fields[0].isEmpty, fields[4].allSatisfy({ $0.isASCIIDigit || $0 == "-" }), !fields[5].isEmpty else {
                return
                    "line \(index + 1) of the cookies file is not a Netscape cookie (7 tab-separated fields: domain, "
                    + "TRUE/FALSE, path, TRUE/FALSE, expiry, name, value); export the file with a cookies.txt exporter"
            }
            cookies += 1
        }
        return cookies == 0 ? "the cookies file holds no cookies; export them from a signed-in browser session" : nil
    }
}
