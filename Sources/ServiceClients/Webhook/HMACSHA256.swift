import CLibSSL

/// HMAC-SHA256 (RFC 2104 with SHA-256) through OpenSSL.
public enum HMACSHA256 {
    /// The 32-byte MAC of `message` under `key`.
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        // OpenSSL wants real pointers even for empty inputs.
        let keyBytes = key.isEmpty ? [0] : key
        let messageBytes = message.isEmpty ? [0] : message
        let ok = keyBytes.withUnsafeBytes { k in
            messageBytes.withUnsafeBytes { m in
                out.withUnsafeMutableBufferPointer { o in
                    HMAC(
                        EVP_sha256(), k.baseAddress, Int32(key.count),
                        m.baseAddress!.assumingMemoryBound(to: UInt8.self), message.count, o.baseAddress, &length)
                }
            }
        }
        precondition(ok != nil && length == 32, "OpenSSL HMAC-SHA256 failed")
        return Array(out.prefix(Int(length)))
    }

    /// The MAC as lower-case hex.
    public static func hex(key: [UInt8], message: [UInt8]) -> String {
        Hex.encode(mac(key: key, message: message))
    }
}

/// Lower-case hexadecimal.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// `bytes` as lower-case hex.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of hex text (either case); nil when it is not hex.
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
