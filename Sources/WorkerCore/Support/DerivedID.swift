import Foundation

/// Ids the daemon derives itself, the same on every host and every attempt: a row written again for
/// the same thing (an outcome delivered twice after a daemon died, a playlist entry expanded again)
/// gets the same id and is stored once.
enum DerivedID {
    /// A UUID (version 8, RFC 9562 "custom") from a 128-bit FNV-1a hash of `text`.
    static func uuid(_ text: String) -> String {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325
        var b: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in text.utf8 {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = (b << 7) | (b >> 57)
        }
        a ^= b >> 17
        b ^= a << 13
        var bytes =
            (0..<8).map { UInt8(truncatingIfNeeded: a >> (56 - 8 * $0)) } + (0..<8).map { UInt8(truncatingIfNeeded: b >> (56 - 8 * $0)) }
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let c = Array(hex)
        return "\(String(c[0..<8]))-\(String(c[8..<12]))-\(String(c[12..<16]))-\(String(c[16..<20]))-\(String(c[20..<32]))"
    }
}
