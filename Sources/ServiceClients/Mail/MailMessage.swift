import Foundation

/// A plain-text mail message.
public struct MailMessage: Sendable, Equatable {
    /// The sender: `addr@example.com` or `Name <addr@example.com>`.
    public var from: String
    /// The recipients, in the same forms.
    public var to: [String]
    public var subject: String
    /// The text; any line endings.
    public var body: String
    /// The `Date` header's time.
    public var date: Date
    /// The `Message-ID` (without angle brackets).
    public var messageID: String

    /// A message dated now with a fresh id.
    public init(from: String, to: [String], subject: String, body: String, date: Date = Date(), messageID: String? = nil) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.date = date
        self.messageID = messageID ?? "\(UUID().uuidString.lowercased())@medianest-worker"
    }

    /// The bare address of `text` (`Name <a@b>` → `a@b`); nil when it is not a usable address
    /// (empty, without `@`, or holding characters that could inject SMTP commands or headers).
    public static func address(of text: String) -> String? {
        var candidate = text.trimmingCharacters(in: .whitespaces)
        if let open = candidate.lastIndex(of: "<"), let close = candidate.lastIndex(of: ">"), open < close {
            candidate = String(candidate[candidate.index(after: open)..<close])
        }
        guard !candidate.isEmpty, candidate.utf8.count <= 254, candidate.contains("@"),
            !candidate.unicodeScalars.contains(where: { $0.value < 0x21 || $0 == "<" || $0 == ">" || $0 == "," || $0.value == 0x7F })
        else { return nil }
        return candidate
    }

    /// The message as sent after DATA, before dot-stuffing: headers and body with CRLF line ends.
    public func rendered() -> [UInt8] {
        var lines: [String] = []
        lines.append("Date: " + Self.rfc5322Date(date))
        lines.append("From: " + Self.headerValue(from))
        lines.append("To: " + to.map(Self.headerValue).joined(separator: ", "))
        lines.append("Subject: " + Self.encodedWord(Self.headerValue(subject)))
        lines.append("Message-ID: <\(Self.headerValue(messageID))>")
        lines.append("MIME-Version: 1.0")
        lines.append("Content-Type: text/plain; charset=utf-8")
        let normalized = Self.lines(of: body)
        let plain = body.utf8.allSatisfy { $0 < 0x80 } && normalized.allSatisfy { $0.utf8.count <= 998 }
        var out = ""
        if plain {
            lines.append("Content-Transfer-Encoding: 7bit")
            out = lines.joined(separator: "\r\n") + "\r\n\r\n" + normalized.joined(separator: "\r\n") + "\r\n"
        } else {
            lines.append("Content-Transfer-Encoding: base64")
            let encoded = Data(normalized.joined(separator: "\r\n").utf8).base64EncodedString()
            var wrapped: [String] = []
            var index = encoded.startIndex
            while index < encoded.endIndex {
                let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
                wrapped.append(String(encoded[index..<end]))
                index = end
            }
            out = lines.joined(separator: "\r\n") + "\r\n\r\n" + wrapped.joined(separator: "\r\n") + "\r\n"
        }
        return Array(out.utf8)
    }

    /// The lines of `text`, whatever its line endings (CRLF, LF or CR).
    static func lines(of text: String) -> [String] {
        text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// A header value on one line: CR and LF (header injection) become spaces.
    static func headerValue(_ text: String) -> String {
        String(text.map { $0 == "\r" || $0 == "\n" || $0 == "\r\n" ? " " : $0 })
    }

    /// `text` as an RFC 2047 encoded word when it is not plain ASCII.
    static func encodedWord(_ text: String) -> String {
        guard !text.utf8.allSatisfy({ $0 < 0x80 }) else { return text }
        return "=?UTF-8?B?" + Data(text.utf8).base64EncodedString() + "?="
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}

/// SMTP's transparency rule (RFC 5321 §4.5.2): the data after DATA ends at a line holding a single
/// dot, so every line that starts with a dot gets one more.
public enum DotStuffing {
    /// `data` with line ends normalized to CRLF, every line starting with `.` given an extra `.`,
    /// and the terminating `CRLF . CRLF` appended.
    public static func stuff(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + data.count / 64 + 8)
        var atLineStart = true
        var i = 0
        while i < data.count {
            let byte = data[i]
            if byte == 0x0D || byte == 0x0A {
                out.append(0x0D)
                out.append(0x0A)
                if byte == 0x0D, i + 1 < data.count, data[i + 1] == 0x0A { i += 1 }
                atLineStart = true
                i += 1
                continue
            }
            if atLineStart && byte == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
            out.append(byte)
            atLineStart = false
            i += 1
        }
        if !atLineStart { out += [0x0D, 0x0A] }
        out += [UInt8(ascii: "."), 0x0D, 0x0A]
        return out
    }
}
