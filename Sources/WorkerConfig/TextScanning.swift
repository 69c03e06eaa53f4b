/// Unsigned decimal numbers: `12`, `1.5`, `.5`, `5.`; no sign, no exponent.
enum Number {
    static func parse(_ scalars: ArraySlice<Unicode.Scalar>) -> Double? {
        parse(String(String.UnicodeScalarView(scalars)))
    }

    static func parse(_ text: String) -> Double? {
        var digits = 0
        var dots = 0
        for scalar in text.unicodeScalars {
            if scalar == "." { dots += 1 } else if ("0"..."9").contains(scalar) { digits += 1 } else { return nil }
        }
        guard digits > 0, dots <= 1 else { return nil }
        return Double(text.hasPrefix(".") ? "0" + text : text)
    }

    /// The shortest text that reads back as `value`, without an exponent for ordinary values.
    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self).unicodeScalars[...]
        while let first = scalars.first, first.properties.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.properties.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
