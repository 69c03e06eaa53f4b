import Foundation
import Synchronization

/// How the connection to the mail server is protected.
public enum SMTPSecurity: String, Sendable, Equatable, CaseIterable {
    /// STARTTLS when the server offers it; a password is never sent without TLS.
    case auto
    /// STARTTLS required: a server that does not offer it is refused.
    case starttls
    /// TLS from the first byte (usually port 465).
    case tls
    /// Never TLS (only for a relay on the same host); a password is then sent in the clear.
    case none
}

/// Where and how to send mail.
public struct SMTPConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var security: SMTPSecurity
    /// Account name for AUTH; nil to send without authenticating.
    public var username: String?
    /// The account's password; a secret, never logged or put in an error.
    public var password: String?
    /// PEM file of the CA certificates that may sign the server's certificate; nil for the system's.
    public var caFile: String?
    /// Whether the server's certificate and name are checked.
    public var verifyCertificate: Bool
    /// Seconds for connecting and for each answer.
    public var timeout: Double
    /// The name given in EHLO.
    public var heloName: String

    /// A configuration.
    public init(
        host: String, port: Int = 587, security: SMTPSecurity = .auto, username: String? = nil, password: String? = nil,
        caFile: String? = nil, verifyCertificate: Bool = true, timeout: Double = 30, heloName: String? = nil
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.caFile = caFile
        self.verifyCertificate = verifyCertificate
        self.timeout = timeout
        self.heloName = heloName ?? SMTPConfiguration.localName()
    }

    static func localName() -> String {
        let name = ProcessInfo.processInfo.hostName
        return name.isEmpty || name.contains(" ") ? "localhost" : name
    }
}

/// Why mail could not be sent. `message` is a sentence for the user; it never holds the password.
public struct SMTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where the exchange stopped (`connect`, `tls`, `auth`, `mail`, `rcpt`, `data`, …).
    public var stage: String
    public var message: String
    /// Whether trying again later could help.
    public var retryable: Bool
    /// The server's reply code when it refused something.
    public var code: Int?

    /// An error.
    public init(stage: String, message: String, retryable: Bool, code: Int? = nil) {
        self.stage = stage
        self.message = message
        self.retryable = retryable
        self.code = code
    }

    public var description: String { message }
}

/// An SMTP client (RFC 5321): EHLO, STARTTLS when offered (through OpenSSL), AUTH PLAIN or LOGIN,
/// MAIL/RCPT/DATA with dot-stuffing. Each message is sent over a fresh connection on a thread of
/// its own, since the socket calls block.
public enum SMTPClient {
    /// Sends `message`. Throws ``SMTPError`` or `CancellationError`.
    public static func send(_ message: MailMessage, with configuration: SMTPConfiguration) async throws {
        let socket = Mutex<Int32>(-1)
        let cancelled = Atomic<Bool>(false)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let thread = Thread {
                    do {
                        try converse(message, configuration, register: { fd in socket.withLock { $0 = fd } })
                        continuation.resume()
                    } catch {
                        if cancelled.load(ordering: .relaxed) {
                            continuation.resume(throwing: CancellationError())
                        } else if let error = error as? SMTPError {
                            continuation.resume(throwing: scrub(error, configuration))
                        } else {
                            continuation.resume(throwing: SMTPError(stage: "send", message: "mail could not be sent", retryable: true))
                        }
                    }
                }
                thread.name = "smtp"
                thread.start()
            }
        } onCancel: {
            cancelled.store(true, ordering: .relaxed)
            let fd = socket.withLock { $0 }
            if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Removes the password (and its Base64 forms) from an error's text, in case a server echoed it.
    static func scrub(_ error: SMTPError, _ configuration: SMTPConfiguration) -> SMTPError {
        guard let password = configuration.password, !password.isEmpty else { return error }
        var copy = error
        var secrets = [password, Data(password.utf8).base64EncodedString()]
        if let user = configuration.username {
            secrets.append(Data("\0\(user)\0\(password)".utf8).base64EncodedString())
        }
        for secret in secrets where copy.message.contains(secret) {
            copy.message = copy.message.replacingOccurrences(of: secret, with: "***")
        }
        return copy
    }

    static func converse(_ message: MailMessage, _ configuration: SMTPConfiguration, register: (Int32) -> Void) throws(SMTPError) {
        guard let sender = MailMessage.address(of: message.from) else {
            throw SMTPError(stage: "mail", message: "the sender '\(message.from)' is not a mail address", retryable: false)
        }
        let recipients = message.to.compactMap(MailMessage.address(of:))
        guard !recipients.isEmpty, recipients.count == message.to.count else {
            throw SMTPError(
                stage: "rcpt", message: "a recipient is not a mail address: \(message.to.joined(separator: ", "))", retryable: false)
        }
        let wire = SMTPWire(host: configuration.host, timeout: configuration.timeout)
        defer { wire.close() }
        try wire.connect(port: configuration.port, register: register)
        if configuration.security == .tls {
            try wire.startTLS(caFile: configuration.caFile, verify: configuration.verifyCertificate)
        }
        _ = try expect(wire, [220], stage: "greeting")
        var capabilities = try hello(wire, configuration)
        if !wire.isTLS && configuration.security != .none {
            if capabilities.contains(where: { $0.uppercased() == "STARTTLS" }) {
                try command(wire, "STARTTLS", expect: [220], stage: "starttls")
                try wire.startTLS(caFile: configuration.caFile, verify: configuration.verifyCertificate)
                capabilities = try hello(wire, configuration)
            } else if configuration.security == .starttls {
                throw SMTPError(
                    stage: "starttls", message: "the mail server does not offer STARTTLS (smtp.tls: starttls requires it)", retryable: false
                )
            }
        }
        if let username = configuration.username, !username.isEmpty {
            try authenticate(
                wire, username: username, password: configuration.password ?? "", capabilities: capabilities, configuration: configuration)
        }
        let eightBit = !message.rendered().allSatisfy { $0 < 0x80 }
        let bodyParameter = eightBit && capabilities.contains { $0.uppercased() == "8BITMIME" } ? " BODY=8BITMIME" : ""
        try command(wire, "MAIL FROM:<\(sender)>\(bodyParameter)", expect: [250], stage: "mail")
        for recipient in recipients {
            try command(wire, "RCPT TO:<\(recipient)>", expect: [250, 251], stage: "rcpt")
        }
        try command(wire, "DATA", expect: [354], stage: "data")
        try wire.write(DotStuffing.stuff(message.rendered()))
        _ = try expect(wire, [250], stage: "data")
        try? wire.write(Array("QUIT\r\n".utf8))
        _ = try? wire.readLine()
    }

    /// EHLO (HELO when EHLO is refused); returns the capability keywords and their parameters, one per line.
    static func hello(_ wire: SMTPWire, _ configuration: SMTPConfiguration) throws(SMTPError) -> [String] {
        try wire.write(Array("EHLO \(configuration.heloName)\r\n".utf8))
        let reply = try readReply(wire)
        if reply.code == 250 {
            return reply.lines.dropFirst().map { String($0) }
        }
        try command(wire, "HELO \(configuration.heloName)", expect: [250], stage: "helo")
        return []
    }

    static func authenticate(
        _ wire: SMTPWire, username: String, password: String, capabilities: [String],
        configuration: SMTPConfiguration
    ) throws(SMTPError) {
        guard wire.isTLS || configuration.security == .none else {
            throw SMTPError(
                stage: "auth",
                message: "the mail server offers no STARTTLS; the password is not sent unencrypted (set smtp.tls: none to allow it)",
                retryable: false)
        }
        let mechanisms = capabilities.filter { $0.uppercased().hasPrefix("AUTH") }
            .flatMap { $0.uppercased().dropFirst(4).split(whereSeparator: { $0 == " " || $0 == "=" }).map(String.init) }
        if mechanisms.contains("PLAIN") {
            let token = Data("\0\(username)\0\(password)".utf8).base64EncodedString()
            try command(wire, "AUTH PLAIN \(token)", expect: [235], stage: "auth")
        } else if mechanisms.contains("LOGIN") {
            try command(wire, "AUTH LOGIN", expect: [334], stage: "auth")
            try command(wire, Data(username.utf8).base64EncodedString(), expect: [334], stage: "auth")
            try command(wire, Data(password.utf8).base64EncodedString(), expect: [235], stage: "auth")
        } else {
            throw SMTPError(
                stage: "auth",
                message:
                    "the mail server offers neither AUTH PLAIN nor AUTH LOGIN (it offers \(mechanisms.isEmpty ? "no AUTH" : mechanisms.joined(separator: " ")))",
                retryable: false)
        }
    }

    @discardableResult
    /// Sends one command line and reads the reply. Lines holding credentials are never logged or
    /// echoed into errors (the server's reply text is, scrubbed by ``scrub(_:_:)``).
    static func command(_ wire: SMTPWire, _ line: String, expect codes: [Int], stage: String) throws(SMTPError) -> Reply {
        try wire.write(Array((line + "\r\n").utf8))
        return try expect(wire, codes, stage: stage)
    }

    struct Reply {
        var code: Int
        /// The text of each line, after the code and separator.
        var lines: [Substring]
    }

    static func readReply(_ wire: SMTPWire) throws(SMTPError) -> Reply {
        var lines: [Substring] = []
        var code = 0
        for _ in 0..<1000 {
            let line = try wire.readLine()
            let utf8 = Array(line.utf8)
            guard utf8.count >= 3, let value = Int(String(decoding: utf8[0..<3], as: UTF8.self)) else {
                throw SMTPError(stage: "read", message: "the mail server sent something that is not an SMTP reply", retryable: true)
            }
            code = value
            let text = line.count > 4 ? line.dropFirst(4) : ""
            lines.append(text)
            if utf8.count == 3 || utf8[3] != UInt8(ascii: "-") { return Reply(code: code, lines: lines) }
        }
        throw SMTPError(stage: "read", message: "the mail server's reply has too many lines", retryable: true)
    }

    static func expect(_ wire: SMTPWire, _ codes: [Int], stage: String) throws(SMTPError) -> Reply {
        let reply = try readReply(wire)
        guard codes.contains(reply.code) else {
            let text = reply.lines.first.map { String($0.prefix(200)) } ?? ""
            let what: String
            switch stage {
            case "auth": what = "refused the login (check smtp.username and smtp.password)"
            case "mail": what = "refused the sender"
            case "rcpt": what = "refused a recipient"
            case "data": what = "refused the message"
            case "greeting": what = "refused the connection"
            default: what = "refused \(stage.uppercased())"
            }
            throw SMTPError(
                stage: stage, message: "the mail server \(what): \(reply.code) \(text)".trimmingCharacters(in: .whitespaces),
                retryable: reply.code >= 400 && reply.code < 500, code: reply.code)
        }
        return reply
    }
}
