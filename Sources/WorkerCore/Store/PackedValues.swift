/// The values of a job record as the scripts pack them into one outbox field (`r`): a sequence of
/// MessagePack values, one per record field in `writeRecord`'s order (Redis' `cmsgpack.pack(...)`).
///
/// One field instead of one per value keeps each record a few stream items long, for Redis to store
/// and send and for the writer to read. Only what the scripts write is read: strings (raw bytes,
/// kept as they are: invalid UTF-8 and NUL included), integers and floats (as their decimal text),
/// and nil or false (the value is absent). Anything else, a value cut short, or a count other than
/// the one expected is an error that names where it is.
enum PackedValues {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Exactly `count` values from `bytes`; nil where a value is absent.
    static func decode(_ bytes: [UInt8], count: Int) -> Result<[[UInt8]?], Failure> {
        var values: [[UInt8]?] = []
        values.reserveCapacity(count)
        var i = 0
        func fail(_ what: String) -> Result<[[UInt8]?], Failure> {
            .failure(Failure(description: "\(what) at byte \(i) of \(bytes.count)"))
        }
        /// The next `n` bytes as a big-endian unsigned integer, or nil when they are not all there.
        func unsigned(_ n: Int) -> UInt64? {
            guard n <= bytes.count - i else { return nil }
            var v: UInt64 = 0
            for k in 0..<n { v = v << 8 | UInt64(bytes[i + k]) }
            i += n
            return v
        }
        /// A string (or bin) of `length` bytes from here; false when the length or the bytes are cut short.
        func string(_ length: Int?) -> Bool {
            guard let n = length, n <= bytes.count - i else { return false }
            values.append(Array(bytes[i..<i + n]))
            i += n
            return true
        }
        while i < bytes.count {
            guard values.count < count else { return fail("more than \(count) values") }
            let tag = bytes[i]
            i += 1
            switch tag {
            case 0xC0, 0xC2:
                values.append(nil)
            case 0x00...0x7F:
                values.append(Array(String(tag).utf8))
            case 0xE0...0xFF:
                values.append(Array(String(Int8(bitPattern: tag)).utf8))
            case 0xCC...0xCF:
                guard let v = unsigned(1 << Int(tag - 0xCC)) else { return fail("an unsigned integer cut short") }
                values.append(Array(String(v).utf8))
            case 0xD0...0xD3:
                let n = 1 << Int(tag - 0xD0)
                guard let v = unsigned(n) else { return fail("an integer cut short") }
                let signed = n == 8 ? Int64(bitPattern: v) : Int64(bitPattern: v << (64 - 8 * n)) >> (64 - 8 * n)
                values.append(Array(String(signed).utf8))
            case 0xCA:
                guard let v = unsigned(4) else { return fail("a float cut short") }
                values.append(Array(Self.text(Double(Float(bitPattern: UInt32(v)))).utf8))
            case 0xCB:
                guard let v = unsigned(8) else { return fail("a double cut short") }
                values.append(Array(Self.text(Double(bitPattern: v)).utf8))
            case 0xA0...0xBF:
                guard string(Int(tag - 0xA0)) else { return fail("a string cut short") }
            case 0xD9, 0xC4:
                guard string(unsigned(1).map(Int.init)) else { return fail("a string cut short") }
            case 0xDA, 0xC5:
                guard string(unsigned(2).map(Int.init)) else { return fail("a string cut short") }
            case 0xDB, 0xC6:
                guard string(unsigned(4).map(Int.init)) else { return fail("a string cut short") }
            default:
                i -= 1
                return fail("a value of MessagePack type 0x\(String(tag, radix: 16)) (not a string, number or nil)")
            }
        }
        guard values.count == count else { return fail("\(values.count) values where \(count) are expected") }
        return .success(values)
    }

    /// A float's decimal text: an integral one without a fraction (`3`, not `3.0`).
    private static func text(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 9.0e15 { return String(Int64(d)) }
        return String(d)
    }
}
