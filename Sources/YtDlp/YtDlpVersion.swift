import Foundation

/// A yt-dlp version as `yt-dlp --version` prints it: a release date `YYYY.MM.DD` (stable),
/// with a fourth part of digits for the nightly and master builds (`2025.11.12.232958`).
public struct YtDlpVersion: Sendable, Equatable, Comparable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int
    /// The build part of a nightly or master build.
    public let build: Int?
    /// The text as printed.
    public let text: String

    /// The oldest release that solves YouTube's player challenges with an outside JS runtime.
    public static let minimum = YtDlpVersion("2025.11.12")!
    /// Days after which a yt-dlp counts as stale (yt-dlp itself warns past 90 days).
    public static let staleDays = 90

    /// Reads `text` (the first word of `--version`'s output); nil when it is not a dated version.
    public init?(_ text: String) {
        let word = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").first.map(String.init) ?? ""
        let parts = word.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 || parts.count == 4,
            parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (2000...2999).contains(y), (1...12).contains(m),
            (1...31).contains(d)
        else { return nil }
        year = y
        month = m
        day = d
        build = parts.count == 4 ? Int(parts[3]) : nil
        self.text = word
    }

    /// `nightly` for a build with a fourth part, else `stable`.
    public var channel: String { build == nil ? "stable" : "nightly" }

    /// The release day, midnight UTC.
    public var date: Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: DateComponents(year: year, month: month, day: day))
    }

    /// Whole days from the release to `now` (0 for a release in the future).
    public func ageDays(now: Date = Date()) -> Int {
        guard let date else { return 0 }
        return max(Int(now.timeIntervalSince(date) / 86400), 0)
    }

    public var description: String { text }

    public static func < (a: YtDlpVersion, b: YtDlpVersion) -> Bool {
        (a.year, a.month, a.day, a.build ?? -1) < (b.year, b.month, b.day, b.build ?? -1)
    }
}
