// The pure part of cutting and chapters: which ranges of a file are kept, how
// old timestamps map to new ones, and where the chapters land after the cuts.
// No libav here; the converter snaps the plan to keyframes (see Media.swift).

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A span of media time in seconds, `start` < `end`.
public struct TimeRange: Sendable, Equatable, Codable {
    public var start: Double
    public var end: Double

    public init(start: Double, end: Double) {
        self.start = start
        self.end = end
    }

    public var length: Double { end - start }
}

/// A chapter to write: `end` nil runs to the next chapter's start (or the end).
public struct ChapterMark: Sendable, Equatable {
    public var start: Double
    public var end: Double?
    public var title: String

    public init(start: Double, end: Double? = nil, title: String) {
        self.start = start
        self.end = end
        self.title = title
    }
}

/// What to cut out of a file and which chapters to give it (`Media.merge`,
/// `Media.remux`). Times are in the input's time, from its start.
public struct EditRequest: Sendable, Equatable {
    /// Ranges to remove.
    public var cut: [TimeRange]
    /// Chapters to write; nil keeps (and shifts) the input's own chapters.
    public var chapters: [ChapterMark]?

    public init(cut: [TimeRange] = [], chapters: [ChapterMark]? = nil) {
        self.cut = cut
        self.chapters = chapters
    }

    public static let none = EditRequest()
    public var isEmpty: Bool { cut.isEmpty && chapters == nil }
}

/// The cuts and chapters for one file of a known duration, made safe: ranges
/// merged, sorted and clamped to the file; ranges that cannot be honoured
/// refused, each with a reason in `notes`. Building a plan never fails.
public struct EditPlan: Sendable, Equatable {
    /// At most this many ranges to remove and this many chapters are taken; the rest are refused.
    public static let maxRanges = 1000
    public static let maxChapters = 1000
    /// Chapter titles are cut to this many characters.
    public static let maxTitleLength = 200
    /// Cuts that would leave less than this many seconds are refused as a whole.
    public static let minimumKept = 1.0

    /// Duration of the input in seconds.
    public let duration: Double
    /// Ranges removed, sorted, disjoint, within 0...duration.
    public let removed: [TimeRange]
    /// Ranges kept, sorted, disjoint; together with `removed` they cover 0...duration.
    public let kept: [TimeRange]
    /// Chapters in the output's time (after the cuts), sorted, not overlapping.
    public let chapters: [ChapterInfo]
    /// Why input was refused or changed ("segment 3: start 40 is after end 30, refused").
    public let notes: [String]

    /// Seconds removed in all.
    public var removedSeconds: Double { removed.reduce(0) { $0 + $1.length } }
    /// Duration after the cuts.
    public var outputDuration: Double { max(0, duration - removedSeconds) }
    /// Nothing to cut.
    public var cutsNothing: Bool { removed.isEmpty }

    /// Builds a plan. `chapters` are in the input's time.
    public init(duration: Double, remove: [TimeRange], chapters: [ChapterMark] = []) {
        var notes: [String] = []
        let dur = duration.isFinite && duration > 0 ? duration : 0
        if dur == 0 && (!remove.isEmpty || !chapters.isEmpty) {
            notes.append("the duration of the media is unknown: nothing is cut and no chapter is written")
        }
        var ranges: [TimeRange] = []
        if dur > 0 {
            var list = remove
            if list.count > Self.maxRanges {
                notes.append("\(list.count) ranges to remove given, only the first \(Self.maxRanges) are used")
                list = Array(list.prefix(Self.maxRanges))
            }
            for (i, r) in list.enumerated() {
                let n = i + 1
                guard r.start.isFinite, r.end.isFinite else {
                    notes.append("range \(n): start and end must be finite numbers, refused")
                    continue
                }
                guard r.start < r.end else {
                    notes.append("range \(n): start \(fmt(r.start)) is not before end \(fmt(r.end)), refused")
                    continue
                }
                var c = r
                if c.start < 0 {
                    notes.append("range \(n): start \(fmt(r.start)) is negative, clamped to 0")
                    c.start = 0
                }
                if c.end > dur {
                    if c.start >= dur {
                        notes.append("range \(n): starts at \(fmt(r.start)), past the end (\(fmt(dur))), refused")
                        continue
                    }
                    notes.append("range \(n): end \(fmt(r.end)) is past the end (\(fmt(dur))), clamped")
                    c.end = dur
                }
                if c.end <= c.start {
                    notes.append("range \(n): empty after clamping, refused")
                    continue
                }
                ranges.append(c)
            }
            ranges.sort { $0.start < $1.start }
            var merged: [TimeRange] = []
            var overlaps = 0
            for r in ranges {
                if var last = merged.last, r.start <= last.end {
                    overlaps += 1
                    last.end = max(last.end, r.end)
                    merged[merged.count - 1] = last
                } else {
                    merged.append(r)
                }
            }
            if overlaps > 0 { notes.append("\(overlaps) overlapping or touching ranges merged") }
            ranges = merged
            let total = ranges.reduce(0) { $0 + $1.length }
            if !ranges.isEmpty && dur - total < Self.minimumKept {
                notes.append("the cuts would leave \(fmt(max(0, dur - total))) s of \(fmt(dur)) s: nothing is cut")
                ranges = []
            }
        }
        self.duration = dur
        self.removed = ranges
        self.kept = Self.complement(ranges, duration: dur)
        if dur > 0 {
            let resolved = Self.resolveChapters(chapters, duration: dur, notes: &notes)
            self.chapters = Self.mapChapters(resolved, removed: ranges, notes: &notes)
        } else {
            self.chapters = []
        }
        self.notes = notes
    }

    /// A plan whose ranges are already clean (sorted, disjoint, within the file),
    /// e.g. after snapping to keyframes, with chapters still in input time.
    init(cleanRemoved: [TimeRange], duration: Double, inputChapters: [ChapterMark], notes: [String]) {
        var n = notes
        self.duration = duration
        self.removed = cleanRemoved
        self.kept = Self.complement(cleanRemoved, duration: duration)
        let resolved = Self.resolveChapters(inputChapters, duration: duration, notes: &n)
        self.chapters = Self.mapChapters(resolved, removed: cleanRemoved, notes: &n)
        self.notes = n
    }

    /// Whether input time `t` falls inside a removed range.
    public func isRemoved(_ t: Double) -> Bool {
        guard let i = lastRange(startingAtOrBefore: t) else { return false }
        return t < removed[i].end
    }

    /// The end of the removed range holding `t`, nil when `t` is kept.
    public func removedEnd(containing t: Double) -> Double? {
        guard let i = lastRange(startingAtOrBefore: t), t < removed[i].end else { return nil }
        return removed[i].end
    }

    /// Seconds removed before input time `t` (a time inside a removed range counts
    /// the part of that range before it).
    public func shift(at t: Double) -> Double {
        var s = 0.0
        for r in removed {
            if r.end <= t {
                s += r.length
            } else {
                if r.start < t { s += t - r.start }
                break
            }
        }
        return s
    }

    /// The output time of input time `t`; a time inside a removed range maps to
    /// the cut point.
    public func newTime(_ t: Double) -> Double {
        guard t.isFinite else { return 0 }
        return max(0, t - shift(at: t))
    }

    private func lastRange(startingAtOrBefore t: Double) -> Int? {
        var lo = 0
        var hi = removed.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if removed[mid].start <= t { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? nil : lo - 1
    }

    static func complement(_ removed: [TimeRange], duration: Double) -> [TimeRange] {
        var kept: [TimeRange] = []
        var at = 0.0
        for r in removed {
            if r.start > at { kept.append(TimeRange(start: at, end: r.start)) }
            at = r.end
        }
        if duration > at { kept.append(TimeRange(start: at, end: duration)) }
        return kept
    }

    /// Control characters removed, whitespace trimmed, at most `maxTitleLength` characters.
    public static func sanitizeTitle(_ title: String) -> String {
        var scalars = String.UnicodeScalarView()
        var lastSpace = true
        for u in title.unicodeScalars {
            let v = u.value
            if v == 0x200b || v == 0xfeff || (v >= 0x202a && v <= 0x202e) || (v >= 0x2066 && v <= 0x2069) { continue }
            let space = v < 0x21 || (v >= 0x7f && v < 0xa0) || v == 0x2028 || v == 0x2029
            if space {
                if !lastSpace { scalars.append(" ") }
            } else {
                scalars.append(u)
            }
            lastSpace = space
        }
        var s = String(scalars).trimmedSpaces()
        if s.count > maxTitleLength { s = String(s.prefix(maxTitleLength)).trimmedSpaces() }
        return s
    }

    /// Chapters checked, clamped and made non-overlapping (an inner chapter
    /// interrupts the one around it, which resumes after it), in input time.
    static func resolveChapters(_ input: [ChapterMark], duration: Double, notes: inout [String]) -> [ChapterMark] {
        var list = input
        if list.count > maxChapters {
            notes.append("\(list.count) chapters given, only the first \(maxChapters) are used")
            list = Array(list.prefix(maxChapters))
        }
        // Valid starts, sorted, for chapters without an end.
        var starts: [Double] = list.compactMap { $0.start.isFinite ? min(max($0.start, 0), duration) : nil }
        starts.sort()
        var spans: [(start: Double, end: Double, title: String, order: Int)] = []
        for (i, c) in list.enumerated() {
            let n = i + 1
            guard c.start.isFinite, c.end?.isFinite ?? true else {
                notes.append("chapter \(n): start and end must be finite numbers, refused")
                continue
            }
            let start = max(c.start, 0)
            if start >= duration {
                notes.append("chapter \(n): starts at \(fmt(c.start)), past the end (\(fmt(duration))), refused")
                continue
            }
            var end: Double
            if let e = c.end {
                guard e > c.start else {
                    notes.append("chapter \(n): start \(fmt(c.start)) is not before end \(fmt(e)), refused")
                    continue
                }
                end = min(e, duration)
            } else {
                end = starts.first { $0 > start } ?? duration
            }
            if end <= start { continue }
            var title = sanitizeTitle(c.title)
            if title.isEmpty { title = "Chapter \(n)" }
            spans.append((start, end, title, i))
        }
        guard !spans.isEmpty else { return [] }
        // Elementary intervals between all boundaries; each takes the chapter
        // covering it that started last (ties: the one given later).
        var bounds = Array(Set(spans.flatMap { [$0.start, $0.end] })).sorted()
        if bounds.count > 4 * maxChapters { bounds = Array(bounds.prefix(4 * maxChapters)) }
        var sorted = spans
        sorted.sort { ($0.start, $0.order) < ($1.start, $1.order) }
        var out: [(start: Double, end: Double, title: String, key: Int)] = []
        for k in 0..<(bounds.count - 1) {
            let a = bounds[k]
            let b = bounds[k + 1]
            var best: Int?
            for (j, s) in sorted.enumerated() {
                if s.start > a { break }
                if s.end >= b { best = j }
            }
            guard let j = best else { continue }
            if let last = out.last, last.key == j, last.end == a {
                out[out.count - 1].end = b
            } else {
                out.append((a, b, sorted[j].title, j))
            }
        }
        return out.map { ChapterMark(start: $0.start, end: $0.end, title: $0.title) }
    }

    /// Chapters (clean, in input time) moved to output time; those entirely inside
    /// a removed range are dropped.
    static func mapChapters(_ chapters: [ChapterMark], removed: [TimeRange], notes: inout [String]) -> [ChapterInfo] {
        let probe = PlanMap(removed: removed)
        var out: [ChapterInfo] = []
        var dropped = 0
        for c in chapters {
            let s = probe.newTime(c.start)
            let e = probe.newTime(c.end ?? c.start)
            if e - s < 0.001 {
                dropped += 1
                continue
            }
            if let last = out.last, last.title == c.title, abs(last.end - s) < 0.001 {
                out[out.count - 1].end = e
            } else {
                out.append(ChapterInfo(start: s, end: e, title: c.title))
            }
        }
        if dropped > 0 { notes.append("\(dropped) chapters lie entirely in removed ranges and are left out") }
        return out
    }
}

/// The time map alone (used while the plan is being built).
private struct PlanMap {
    let removed: [TimeRange]
    func newTime(_ t: Double) -> Double {
        var s = 0.0
        for r in removed {
            if r.end <= t {
                s += r.length
            } else {
                if r.start < t { s += t - r.start }
                break
            }
        }
        return max(0, t - s)
    }
}

private func fmt(_ v: Double) -> String {
    guard v.isFinite else { return String(describing: v) }
    let r = (v * 1000).rounded() / 1000
    return r == r.rounded() && abs(r) < 1e15 ? String(Int64(r)) : String(r)
}

extension String {
    fileprivate func trimmedSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " { s = s.dropFirst() }
        while let l = s.last, l == " " { s = s.dropLast() }
        return String(s)
    }

}
