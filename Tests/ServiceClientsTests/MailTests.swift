import Foundation
import Testing

@testable import ServiceClients

@Suite("SMTP dot-stuffing and messages")
struct MailTests {
    func stuffed(_ text: String) -> String {
        String(decoding: DotStuffing.stuff(Array(text.utf8)), as: UTF8.self)
    }

    @Test func linesStartingWithADotGetAnother() {
        #expect(stuffed(".hidden\r\nplain\r\n.\r\n..two\r\n") == "..hidden\r\nplain\r\n..\r\n...two\r\n.\r\n")
    }

    @Test func dotsInsideALineAreLeftAlone() {
        #expect(stuffed("a.b\r\nend. \r\n") == "a.b\r\nend. \r\n.\r\n")
    }

    @Test func bareLineFeedsAndCarriageReturnsBecomeCRLF() {
        #expect(stuffed("one\ntwo\rthree\r\n.four") == "one\r\ntwo\r\nthree\r\n..four\r\n.\r\n")
    }

    @Test func aMessageOfJustTheTerminatorCannotEndTheDataEarly() {
        // "\r\n.\r\n" inside the body would otherwise end DATA.
        #expect(stuffed("before\r\n.\r\nafter") == "before\r\n..\r\nafter\r\n.\r\n")
    }

    @Test func emptyData() {
        #expect(stuffed("") == ".\r\n")
        #expect(stuffed("\r\n") == "\r\n.\r\n")
    }

    @Test func addresses() {
        #expect(MailMessage.address(of: "MediaNest <medianest@example.com>") == "medianest@example.com")
        #expect(MailMessage.address(of: " ops@example.com ") == "ops@example.com")
        #expect(MailMessage.address(of: "no-at-sign") == nil)
        #expect(MailMessage.address(of: "a@b.c>\r\nRCPT TO:<x@y.z") == nil, "no command injection")
        #expect(MailMessage.address(of: "a@b.c\r\nBcc: x@y.z") == nil)
    }

    @Test func renderedMessageHasHeadersAndCRLFBody() {
        let message = MailMessage(
            from: "MediaNest <m@example.com>", to: ["a@example.com", "b@example.com"],
            subject: "Job failed\r\nBcc: evil@example.com", body: "line 1\nline 2",
            date: Date(timeIntervalSince1970: 0), messageID: "id@test")
        let text = String(decoding: message.rendered(), as: UTF8.self)
        #expect(
            text.hasPrefix(
                "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\nFrom: MediaNest <m@example.com>\r\nTo: a@example.com, b@example.com\r\n"))
        #expect(text.contains("Subject: Job failed Bcc: evil@example.com\r\n"), "CR/LF in a header value cannot start a new header")
        #expect(text.contains("Message-ID: <id@test>\r\n"))
        #expect(text.contains("Content-Transfer-Encoding: 7bit\r\n\r\nline 1\r\nline 2\r\n"))
    }

    @Test func nonASCIIIsEncoded() {
        let message = MailMessage(
            from: "m@example.com", to: ["a@example.com"], subject: "Téléchargé", body: "Fertig ✓",
            date: Date(timeIntervalSince1970: 0), messageID: "id@test")
        let text = String(decoding: message.rendered(), as: UTF8.self)
        #expect(text.contains("Subject: =?UTF-8?B?" + Data("Téléchargé".utf8).base64EncodedString() + "?=\r\n"))
        #expect(text.contains("Content-Transfer-Encoding: base64\r\n\r\n" + Data("Fertig ✓".utf8).base64EncodedString() + "\r\n"))
        #expect(message.rendered().allSatisfy { $0 < 0x80 })
    }

    @Test func passwordsAreScrubbedFromErrors() {
        let configuration = SMTPConfiguration(host: "mail", username: "u", password: "hunter2")
        let echoed = SMTPError(
            stage: "auth", message: "the mail server refused the login: 535 bad hunter2 " + Data("\0u\0hunter2".utf8).base64EncodedString(),
            retryable: false)
        let scrubbed = SMTPClient.scrub(echoed, configuration)
        #expect(!scrubbed.message.contains("hunter2"))
        #expect(!scrubbed.message.contains(Data("\0u\0hunter2".utf8).base64EncodedString()))
    }
}
