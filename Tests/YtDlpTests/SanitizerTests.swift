import Testing

@testable import YtDlp

@Suite("file names: sanitizer and output template")
struct SanitizerTests {
    let s = FileNameSanitizer.self

    @Test func slashesAndWindowsCharactersBecomeLookAlikes() {
        #expect(s.sanitize("AC/DC: Live? \"Best\" <of> *|* \\o/") == "AC⧸DC： Live？ ＂Best＂ ＜of＞ ＊｜＊ ⧹o⧸")
        #expect(s.sanitize("/") == "⧸")
        #expect(s.sanitize("../") == "⧸")
        #expect(!s.sanitize("../../etc/passwd").contains("/"))
    }

    @Test func noLeadingDotsNoDotNames() {
        #expect(s.sanitize(".hidden") == "hidden")
        #expect(s.sanitize("...  .x") == "x")
        #expect(s.sanitize("..") == "untitled")
        #expect(s.sanitize(".", placeholder: "abc") == "abc")
        #expect(s.sanitize("name.") == "name")
        #expect(s.sanitize("  spaced   out  ") == "spaced out")
    }

    @Test func controlAndBidiCharactersAreDropped() {
        #expect(s.sanitize("a\u{0}b\u{1}c\u{7F}d\u{85}e\tf\ng") == "abcd e f g")
        #expect(s.sanitize("evil\u{202E}gpj.exe") == "evilgpj.exe")
        #expect(s.sanitize("zero\u{200B}width\u{FEFF}") == "zerowidth")
        #expect(s.sanitize("\u{1}\u{2}", placeholder: "id") == "id")
    }

    @Test func invalidUTF8BecomesReplacementCharacters() {
        let name = s.sanitize(bytes: [0x61, 0xFF, 0xFE, 0x62, 0xC3])
        #expect(name == "a\u{FFFD}\u{FFFD}b\u{FFFD}")
        #expect(String(validating: Array(name.utf8), as: UTF8.self) == name)
    }

    @Test func nfcForm() {
        #expect(s.sanitize("e\u{301}") == "\u{E9}")
    }

    @Test func cutAt200BytesOnACharacterBoundary() {
        let long = String(repeating: "é", count: 250)  // 500 bytes
        let cut = s.sanitize(long)
        #expect(cut.utf8.count == 200)
        #expect(cut == String(repeating: "é", count: 100))
        let odd = "a" + String(repeating: "€", count: 100)  // 1 + 300 bytes: 66 euros fit after the a
        #expect(s.sanitize(odd).utf8.count == 199)
        // A family emoji is one character of 25 bytes: it is kept whole or not at all.
        let family = "👨‍👩‍👧‍👦"
        let emojis = String(repeating: family, count: 10)
        let kept = s.sanitize(emojis)
        #expect(kept == String(repeating: family, count: 8))
        // A combining mark is never orphaned.
        let combining = String(repeating: "x", count: 199) + "e\u{301}\u{301}"
        #expect(s.sanitize(combining) == String(repeating: "x", count: 199))
    }

    @Test(arguments: [
        ("CON", "CON_"), ("con", "con_"), ("Nul", "Nul_"), ("COM1", "COM1_"), ("lpt9", "lpt9_"),
        ("con.txt", "con_.txt"), ("AUX.tar.gz", "AUX_.tar.gz"), ("CONSOLE", "CONSOLE"), ("COM10", "COM10"),
    ])
    func reservedNames(_ input: String, _ expected: String) {
        #expect(s.sanitize(input) == expected)
    }

    @Test func templateRendersInsideTheLibrary() {
        let t = OutputTemplate("{channel}/{title} [{id}].{ext}")
        let r = t.render(["channel": "../../etc", "title": "a/b", "id": "xyz"], ext: "mp4")
        #expect(r.folders == ["⧸..⧸etc"])
        #expect(r.baseName == "a⧸b [xyz]")
        #expect(r.fileName == "a⧸b [xyz].mp4")
        #expect(r.relativePath == "⧸..⧸etc/a⧸b [xyz].mp4")
    }

    @Test func missingValuesGetPlaceholders() {
        let r = OutputTemplate("{user}/{playlist}/{index} - {title} ({date}) [{id}].{ext}").render(["id": "abc"], ext: "m4a")
        #expect(r.folders == ["unknown-user", "Videos"])
        #expect(r.fileName == "00 - Untitled (unknown-date) [abc].m4a")
        let noID = OutputTemplate("{title}.{ext}").render([:], ext: "mp4")
        #expect(noID.fileName == "Untitled.mp4")
    }

    @Test func aLongTitleIsShortenedSoTheIdSurvives() {
        let title = String(repeating: "é", count: 250)
        let r = OutputTemplate("{channel}/{title} [{id}].{ext}").render(
            ["channel": String(repeating: "c", count: 300), "title": title, "id": "dQw4w9WgXcQ"], ext: "mp4")
        #expect(r.baseName.utf8.count <= 200)
        #expect(r.baseName.hasSuffix(" [dQw4w9WgXcQ]"))
        #expect(r.baseName.hasPrefix("éé"))
        #expect(r.folders[0].utf8.count == 200)
        #expect((r.baseName + "-thumb.jpg").utf8.count < 255)
    }

    @Test func extInTheMiddleAndLiteralDots() {
        let r = OutputTemplate("{title}-{ext}").render(["title": "x"], ext: "mkv")
        #expect(r.fileName == "x-mkv" && r.baseName == "x-mkv")
        let dotted = OutputTemplate(".{channel}/{title}.{ext}").render(["channel": "c", "title": "t"], ext: "mp4")
        #expect(dotted.folders == ["c"])
    }
}
