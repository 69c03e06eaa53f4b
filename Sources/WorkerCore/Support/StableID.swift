/// Ids made from a key: the same key always gives the same id, so a row written again for the same
/// outcome (an outcome delivered twice after a daemon died) is recognised and stored once.
enum StableID {
    /// A UUID-formatted id (version 8, RFC 9562 variant) from two 64-bit FNV-1a hashes of `key`.
    static func uuid(_ key: String) -> String {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325
        var b: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in key.utf8 {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = b &+ (b << 7)
        }
        a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_8000  // version 8
        b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // variant 10
        func hex(_ v: UInt64, _ digits: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(digits - s.count, 0)) + s
        }
        let h = hex(a, 16), l = hex(b, 16)
        let hi = Array(h), lo = Array(l)
        return String(hi[0..<8]) + "-" + String(hi[8..<12]) + "-" + String(hi[12..<16]) + "-" + String(lo[0..<4]) + "-" + String(lo[4..<16])
    }
}
