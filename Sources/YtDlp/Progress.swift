/// One progress report of a running download, from a `--progress-template` line.
public struct DownloadProgress: Sendable, Equatable {
    public enum Status: String, Sendable {
        case downloading, finished, error
    }

    public var status: Status
    /// The format being downloaded.
    public var formatID: String?
    public var downloadedBytes: Int64?
    /// The exact size, when the server said it.
    public var totalBytes: Int64?
    /// yt-dlp's estimate (fragmented downloads).
    public var totalBytesEstimate: Int64?
    /// Bytes per second.
    public var speed: Double?
    /// Seconds left.
    public var eta: Double?
    public var fragmentIndex: Int?
    public var fragmentCount: Int?

    public init(
        status: Status, formatID: String? = nil, downloadedBytes: Int64? = nil, totalBytes: Int64? = nil,
        totalBytesEstimate: Int64? = nil, speed: Double? = nil, eta: Double? = nil,
        fragmentIndex: Int? = nil, fragmentCount: Int? = nil
    ) {
        self.status = status
        self.formatID = formatID
        self.downloadedBytes = downloadedBytes
        self.totalBytes = totalBytes
        self.totalBytesEstimate = totalBytesEstimate
        self.speed = speed
        self.eta = eta
        self.fragmentIndex = fragmentIndex
        self.fragmentCount = fragmentCount
    }
}

/// A line yt-dlp writes on stdout during a download, through the templates this module gives it.
public enum OutputLine: Sendable, Equatable {
    /// A progress report.
    case progress(DownloadProgress)
    /// A format's file is complete, at `path`.
    case moved(formatID: String?, path: String)

    /// `--progress-template` value: one JSON object per report. yt-dlp writes `NA` for a missing
    /// field, which the parser reads as null.
    public static let progressTemplate =
        #"download:{"mnp":1,"s":%(progress.status)j,"d":%(progress.downloaded_bytes)j,"t":%(progress.total_bytes)j,"te":%(progress.total_bytes_estimate)j,"sp":%(progress.speed)j,"eta":%(progress.eta)j,"f":%(info.format_id)j,"fi":%(progress.fragment_index)j,"fc":%(progress.fragment_count)j}"#

    /// `--print` value: one JSON object per finished file.
    public static let movedTemplate = #"after_move:{"mnm":1,"p":%(filepath)j,"f":%(format_id)j}"#

    /// Reads one stdout line; nil for anything else (yt-dlp's own messages).
    public static func parse(_ line: String) -> OutputLine? {
        let bytes = Array(line.utf8)
        guard bytes.count > 8, bytes[0] == UInt8(ascii: "{"), let object = FlatJSON.parse(bytes) else { return nil }
        if object["mnp"] != nil {
            guard let s = object["s"]?.string, let status = DownloadProgress.Status(rawValue: s) else { return nil }
            return .progress(
                DownloadProgress(
                    status: status, formatID: object["f"]?.string, downloadedBytes: object["d"]?.int64,
                    totalBytes: object["t"]?.int64, totalBytesEstimate: object["te"]?.int64, speed: object["sp"]?.double,
                    eta: object["eta"]?.double, fragmentIndex: object["fi"]?.int64.map(Int.init),
                    fragmentCount: object["fc"]?.int64.map(Int.init)))
        }
        if object["mnm"] != nil, let path = object["p"]?.string {
            return .moved(formatID: object["f"]?.string, path: path)
        }
        return nil
    }
}

/// Overall progress of a download of one or more formats.
public struct ProgressAggregator: Sendable {
    /// The whole download, as reported to the job.
    public struct Overall: Sendable, Equatable {
        /// 0...1, never going back.
        public var fraction: Double
        public var downloadedBytes: Int64
        /// Known once every format's size is known.
        public var totalBytes: Int64?
        public var speed: Double?
        public var eta: Double?
    }

    private struct Part: Sendable {
        var id: String
        var expected: Int64?
        var downloaded: Int64 = 0
        var total: Int64?
        var finished = false
    }

    private var parts: [Part]
    private var best: Double = 0

    /// `formats`: the formats in download order with their expected sizes, when known.
    public init(formats: [(id: String, expectedSize: Int64?)]) {
        parts = formats.map { Part(id: $0.id, expected: $0.expectedSize) }
    }

    /// Folds one report in and returns the overall state.
    public mutating func update(_ p: DownloadProgress) -> Overall {
        let index = parts.firstIndex { $0.id == p.formatID } ?? parts.firstIndex { !$0.finished } ?? max(parts.count - 1, 0)
        if parts.isEmpty { parts = [Part(id: p.formatID ?? "?", expected: nil)] }
        var part = parts[index]
        if let d = p.downloadedBytes { part.downloaded = max(d, 0) }
        if let t = p.totalBytes, t > 0 { part.total = t } else if let te = p.totalBytesEstimate, te > 0 { part.total = te }
        if p.status == .finished {
            part.finished = true
            part.total = max(part.downloaded, 1)
        }
        parts[index] = part

        let known = parts.compactMap { $0.total ?? $0.expected }
        let fallbackWeight = known.isEmpty ? 1 : Double(known.reduce(0, +)) / Double(known.count)
        var weighted = 0.0
        var weights = 0.0
        for part in parts {
            let size = part.total ?? part.expected
            let weight = size.map { Double(max($0, 1)) } ?? fallbackWeight
            let fraction = part.finished ? 1 : (size.map { min(Double(part.downloaded) / Double(max($0, 1)), 0.999) } ?? 0)
            weighted += weight * fraction
            weights += weight
        }
        best = max(best, weights > 0 ? weighted / weights : 0)
        let downloaded = parts.reduce(Int64(0)) { $0 + $1.downloaded }
        let totals = parts.map { $0.total ?? $0.expected }
        let total: Int64? = totals.contains(where: { $0 == nil }) ? nil : totals.reduce(Int64(0)) { $0 + ($1 ?? 0) }
        var eta = p.eta
        if let total, let speed = p.speed, speed > 0 { eta = Double(max(total - downloaded, 0)) / speed }
        return Overall(fraction: best, downloadedBytes: downloaded, totalBytes: total, speed: p.speed, eta: eta)
    }
}

/// A reader for the flat JSON objects of the progress templates: string, number, boolean, null
/// and yt-dlp's bare `NA` values, no nesting. Cheap enough to run on every line.
enum FlatJSON {
    enum Value: Equatable {
        case string(String)
        case number(Double)
        case bool(Bool)
        case null

        var string: String? { if case .string(let s) = self { return s }; return nil }
        var double: Double? { if case .number(let d) = self, d.isFinite { return d }; return nil }
        var int64: Int64? {
            guard let d = double, abs(d) < 9e18 else { return nil }
            return Int64(d)
        }
    }

    static func parse(_ bytes: [UInt8]) -> [String: Value]? {
        var i = 0
        func skip() { while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 } }
        func expect(_ c: UInt8) -> Bool {
            skip()
            guard i < bytes.count, bytes[i] == c else { return false }
            i += 1
            return true
        }
        func string() -> String? {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            var out: [UInt8] = []
            while i < bytes.count {
                let b = bytes[i]
                i += 1
                if b == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if b != UInt8(ascii: "\\") { out.append(b); continue }
                guard i < bytes.count else { return nil }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard let high = hex4() else { return nil }
                    var scalar = high
                    if (0xD800..<0xDC00).contains(high), i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"),
                        bytes[i + 1] == UInt8(ascii: "u")
                    {
                        i += 2
                        guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        scalar = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8))
                default: out.append(e)
                }
            }
            return nil
        }
        func hex4() -> UInt32? {
            guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16) else { return nil }
            i += 4
            return v
        }
        func value() -> Value? {
            skip()
            guard i < bytes.count else { return nil }
            switch bytes[i] {
            case UInt8(ascii: "\""): return string().map { .string($0) }
            case UInt8(ascii: "N"): return word("NA") ? .null : nil
            case UInt8(ascii: "n"): return word("null") || word("nan") ? .null : nil
            case UInt8(ascii: "t"): return word("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return word("false") ? .bool(false) : nil
            case UInt8(ascii: "I"): return word("Infinity") ? .null : nil
            default:
                let start = i
                while i < bytes.count,
                    (bytes[i] >= 0x30 && bytes[i] <= 0x39) || bytes[i] == UInt8(ascii: "-")
                        || bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: ".") || bytes[i] == UInt8(ascii: "e")
                        || bytes[i] == UInt8(ascii: "E")
                {
                    i += 1
                }
                guard i > start, let d = Double(String(decoding: bytes[start..<i], as: UTF8.self)) else { return nil }
                return .number(d)
            }
        }
        func word(_ w: StaticString) -> Bool {
            let n = w.utf8CodeUnitCount
            guard i + n <= bytes.count else { return false }
            let p = w.utf8Start
            for k in 0..<n where bytes[i + k] != p[k] { return false }
            i += n
            return true
        }

        guard expect(UInt8(ascii: "{")) else { return nil }
        var out: [String: Value] = [:]
        skip()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { return out }
        while true {
            skip()
            guard let key = string(), expect(UInt8(ascii: ":")), let v = value() else { return nil }
            out[key] = v
            skip()
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { return out }
            return nil
        }
    }
}
