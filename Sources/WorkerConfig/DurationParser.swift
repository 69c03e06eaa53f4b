/// Reads durations as written in `jobs.yml`: a number of seconds (`30`, `1.5`), or one or more
/// number-and-unit parts such as `250ms`, `5s`, `10m`, `2h`, `7d`, `1w`, `1h30m`, `1h 30m`.
///
/// Units: `ms`, `s`, `m` (minutes), `h`, `d`, `w`; lower case. Negative, empty, unit-less
/// multi-part and otherwise malformed text is refused.
package enum DurationParser {
    /// The duration in seconds, or `nil` when `text` is not a duration.
    package static func parse(_ text: String) -> Double? {
        let scalars = Array(text.trimmingWhitespace().unicodeScalars)
        guard !scalars.isEmpty else { return nil }

        // A bare number is seconds.
        if let seconds = Number.parse(scalars[...]), seconds.isFinite {
            return seconds
        }

        var total = 0.0
        var index = 0
        var parts = 0
        while index < scalars.count {
            while index < scalars.count, scalars[index] == " " { index += 1 }
            guard index < scalars.count else { break }
            let numberStart = index
            while index < scalars.count, scalars[index] == "." || ("0"..."9").contains(scalars[index]) { index += 1 }
            guard let value = Number.parse(scalars[numberStart..<index]) else { return nil }
            let unitStart = index
            while index < scalars.count, ("a"..."z").contains(scalars[index]) { index += 1 }
            let unit = String(String.UnicodeScalarView(scalars[unitStart..<index]))
            guard let multiplier = unitSeconds[unit] else { return nil }
            total += value * multiplier
            parts += 1
        }
        guard parts > 0, total.isFinite else { return nil }
        return total
    }

    /// `seconds` written the way `jobs.yml` writes durations: `7d`, `1h30m`, `250ms`, `0s`;
    /// ``parse(_:)`` reads it back to the same value.
    package static func format(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return String(seconds) }
        if seconds == 0 { return "0s" }
        let milliseconds = (seconds * 1000).rounded()
        guard abs(milliseconds / 1000 - seconds) < 1e-9, milliseconds < 1e15 else {
            return Number.format(seconds)
        }
        var rest = Int64(milliseconds)
        var text = ""
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
            let count = rest / size
            if count > 0 {
                text += "\(count)\(unit)"
                rest -= count * size
            }
        }
        return text
    }

    private static let unitSeconds: [String: Double] = [
        "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800,
    ]
}
