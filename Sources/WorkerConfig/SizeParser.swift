/// Reads sizes as written in `jobs.yml`: a number of bytes (`1024`), or a number and a unit:
/// `KiB` `MiB` `GiB` `TiB` `PiB` (powers of 1024) or `KB` `MB` `GB` `TB` `PB` (powers of 1000),
/// the final `B` optional (`10Gi`, `10G`), case ignored, a space allowed before the unit
/// (`10 GiB`), fractions allowed (`1.5GB`). A fractional byte count is rounded down.
package enum SizeParser {
    /// The size in bytes, or `nil` when `text` is not a size or does not fit in `Int64`.
    package static func parse(_ text: String) -> Int64? {
        let scalars = Array(text.trimmingWhitespace().unicodeScalars)
        var index = 0
        while index < scalars.count, scalars[index] == "." || ("0"..."9").contains(scalars[index]) { index += 1 }
        let numberText = String(String.UnicodeScalarView(scalars[0..<index]))
        guard !numberText.isEmpty else { return nil }
        while index < scalars.count, scalars[index] == " " { index += 1 }
        let unit = String(String.UnicodeScalarView(scalars[index...])).lowercased()
        guard let multiplier = multipliers[unit] else { return nil }

        // Whole numbers are multiplied exactly; fractions go through Double.
        if numberText.allSatisfy(\.isASCIIDigit) {
            guard let value = Int64(numberText) else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
            return overflow ? nil : product
        }
        guard let value = Number.parse(numberText) else { return nil }
        let bytes = (value * Double(multiplier)).rounded(.down)
        guard bytes.isFinite, bytes < 9.2e18 else { return nil }
        return Int64(bytes)
    }

    /// `bytes` in the largest binary unit that divides it exactly (`10GiB`, `512MiB`), or plain bytes.
    package static func format(_ bytes: Int64) -> String {
        for (unit, size) in [
            ("PiB", Int64(1) << 50), ("TiB", Int64(1) << 40), ("GiB", Int64(1) << 30),
            ("MiB", Int64(1) << 20), ("KiB", Int64(1) << 10),
        ]
        where bytes != 0 && bytes % size == 0 {
            return "\(bytes / size)\(unit)"
        }
        return String(bytes)
    }

    private static let multipliers: [String: Int64] = {
        var table: [String: Int64] = ["": 1, "b": 1]
        for (power, letter) in ["k", "m", "g", "t", "p"].enumerated() {
            let exponent = power + 1
            var decimal: Int64 = 1
            for _ in 0..<exponent { decimal *= 1000 }
            let binary = Int64(1) << (10 * exponent)
            table[letter] = decimal
            table[letter + "b"] = decimal
            table[letter + "i"] = binary
            table[letter + "ib"] = binary
        }
        return table
    }()
}
