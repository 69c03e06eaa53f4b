import Foundation
import JSON
import WorkerCore

/// Plain-text tables and the little number formats `ctl` prints.
enum CtlFormat {
    /// A table with a header row; columns listed in `right` are right-aligned. Cells are cut to `maxWidth`.
    static func table(_ header: [String], _ rows: [[String]], right: Set<Int> = [], maxWidth: Int = 48) -> String {
        let cut = rows.map { $0.map { clip($0, maxWidth) } }
        var widths = header.map(\.count)
        for row in cut {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, cell) in cells.enumerated() where i < widths.count {
                let pad = String(repeating: " ", count: max(widths[i] - cell.count, 0))
                parts.append(right.contains(i) ? pad + cell : (i == cells.count - 1 ? cell : cell + pad))
            }
            return parts.joined(separator: "  ")
        }
        return ([line(header)] + cut.map(line)).joined(separator: "\n")
    }

    static func clip(_ text: String, _ width: Int) -> String {
        text.count <= width ? text : String(text.prefix(max(width - 1, 1))) + "…"
    }

    /// `1.5 GiB`, `730 KiB`, `12 B`.
    static func bytes(_ value: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = value
        var unit = 0
        while v >= 1024 && unit < units.count - 1 {
            v /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(v)) B" : String(format: v < 10 ? "%.1f %@" : "%.0f %@", v, units[unit])
    }

    /// `42s`, `3m 07s`, `2h 05m`, `3d 4h`.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "–" }
        let s = Int(seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%dm %02ds", s / 60, s % 60) }
        if s < 86_400 { return String(format: "%dh %02dm", s / 3600, (s % 3600) / 60) }
        return "\(s / 86_400)d \((s % 86_400) / 3600)h"
    }

    /// A progress bar such as `[██████░░░░]`.
    static func bar(_ percent: Double?, width: Int) -> String {
        guard let percent, percent.isFinite else { return "[" + String(repeating: "·", count: width) + "]" }
        let clamped = min(max(percent, 0), 100)
        let eighths = Int((clamped / 100 * Double(width * 8)).rounded())
        let full = eighths / 8
        let partial = eighths % 8
        let blocks = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        var out = String(repeating: "█", count: full)
        if full < width { out += blocks[partial] }
        out += String(repeating: "░", count: max(width - full - (partial > 0 && full < width ? 1 : 0), 0))
        return "[" + out + "]"
    }

    /// An RFC 3339 time as `2026-11-24 21:10:28 (3m ago)` or `(in 12m)`, local time.
    static func when(_ text: String?, now: Date = Date()) -> String {
        guard let text, let ms = Timestamp.parse(text) else { return "–" }
        let date = Date(timeIntervalSince1970: Double(ms) / 1000)
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        let delta = date.timeIntervalSince(now)
        let relative = delta >= 0 ? "in \(duration(delta))" : "\(duration(-delta)) ago"
        return "\(formatter.string(from: date)) (\(relative))"
    }

    static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .number(let n)?: return Double(n)
        case .string(let s)?: return Double(s)
        default: return nil
        }
    }

    static func text(_ value: JSONValue?) -> String {
        switch value {
        case .string(let s)?: return s
        case .number(let n)?: return n
        case .bool(let b)?: return b ? "yes" : "no"
        case .null?, nil: return "–"
        default: return value?.encoded ?? "–"
        }
    }
}
