import Testing

@testable import JSON

@Suite("JSON")
struct JSONTests {
    @Test func roundTripsKeepingOrderAndNumbers() throws {
        let text = #"{"b":1,"a":[true,false,null,-0.5e3,12345678901234567890],"s":"é\n\"\u0001"}"#
        let v = try #require(JSONValue.parse(text))
        #expect(v.encoded == #"{"b":1,"a":[true,false,null,-0.5e3,12345678901234567890],"s":"é\n\"\u0001"}"#)
        #expect(v["b"]?.intValue == 1)
        #expect(v["a"]?.kind == "an array")
    }

    @Test func refusesInvalidDocuments() {
        for bad in ["", "{", "[1,]", "{\"a\":}", "01", "1.", "\"\\x\"", "\"a", "tru", "{} x", "\"\\ud800\""] {
            #expect(JSONValue.parse(bad) == nil, "accepted \(bad)")
        }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(JSONValue.parse(deep) == nil)
    }

    @Test func surrogatePairs() {
        #expect(JSONValue.parse(#""\ud83d\ude00""#)?.stringValue == "😀")
    }

    @Test func quoteEscapesControlCharacters() {
        #expect(JSONText.quote("a\u{7}b\u{2028}") == #""a\u0007b\u2028""#)
    }
}

@Suite("JSON parser edge cases")
struct JSONParserEdgeCaseTests {
    @Test func nestingIsLimitedTo512Levels() {
        let limit = JSONParser.maximumDepth
        #expect(limit == 512)
        let arrays = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        #expect(JSONValue.parse(arrays) != nil, "512 levels are accepted")
        let tooDeep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        #expect(JSONValue.parse(tooDeep) == nil, "513 levels are refused")
        let objects = String(repeating: #"{"a":"#, count: limit) + "1" + String(repeating: "}", count: limit)
        #expect(JSONValue.parse(objects) != nil)
        let mixed = String(repeating: #"[{"a":"#, count: limit / 2 + 1) + "1" + String(repeating: "}]", count: limit / 2 + 1)
        #expect(JSONValue.parse(mixed) == nil, "arrays and objects count together")
    }

    @Test func invalidUTF8IsRefused() {
        let quote = UInt8(ascii: "\"")
        for bytes: [UInt8] in [
            [quote, 0xFF, quote],  // never valid
            [quote, 0xC3, quote],  // truncated two-byte sequence
            [quote, 0xC0, 0xAF, quote],  // overlong "/"
            [quote, 0xED, 0xA0, 0x80, quote],  // a surrogate encoded directly (CESU-8)
            [quote, 0x61, 0x5C, 0x6E, 0xFE, quote],  // after an escape, on the slow path
            [0xEF, 0xBB, 0xBF] + Array("{}".utf8),  // a byte-order mark is not JSON whitespace
        ] {
            #expect(JSONValue.parse(bytes: bytes) == nil, "accepted \(bytes)")
        }
        #expect(JSONValue.parse(bytes: [quote, 0xC3, 0xA9, quote])?.stringValue == "é")
    }

    @Test func loneSurrogatesAreRefused() {
        for bad in [#""\ud800""#, #""\udc00""#, #""\ud800x""#, #""\ud800\u0041""#, #""\ud800\ud800""#, #""\ude00\ud83d""#] {
            #expect(JSONValue.parse(bad) == nil, "accepted \(bad)")
        }
        #expect(JSONValue.parse(#""\uD83D\uDE00""#)?.stringValue == "😀", "upper-case hex")
        #expect(JSONValue.parse(#""\u00e9\u0000""#)?.stringValue == "é\u{0}", "NUL by escape is a character")
    }

    @Test func rawControlCharactersInStringsAreRefused() {
        for scalar in [0x00, 0x01, 0x0A, 0x0D, 0x09, 0x1F] {
            let text = "\"a" + String(UnicodeScalar(UInt8(scalar))) + "b\""
            #expect(JSONValue.parse(text) == nil, "accepted raw U+\(String(scalar, radix: 16))")
        }
        #expect(JSONValue.parse("\"a\u{7F}b\"")?.stringValue == "a\u{7F}b", "DEL is not a control character in JSON")
    }

    @Test func bigNumbersAreKeptAsText() throws {
        let text = #"[123456789012345678901234567890,-0.000000000000000000001,1E+400,1e-400,-0,0.10]"#
        let v = try #require(JSONValue.parse(text))
        #expect(v.encoded == text, "every number is written back as it was read")
        guard case .array(let items) = v else { Issue.record("not an array"); return }
        #expect(items[0] == .number("123456789012345678901234567890"))
        #expect(items[0].intValue == nil, "too big for Int")
        #expect(items[5] == .number("0.1"), "numbers compare by value")
        #expect(JSONValue.number("9007199254740993").intValue == 9_007_199_254_740_993, "exact beyond 2^53")
        for bad in ["+1", ".5", "1e", "1e+", "-", "0x10", "NaN", "Infinity", "1.5.2"] {
            #expect(JSONValue.parse(bad) == nil, "accepted \(bad)")
            #expect(!JSONValue.isNumber(bad), "\(bad) is a number")
        }
        for good in ["0", "-0", "1.5", "1e5", "1E-5", "-12.5e+3"] { #expect(JSONValue.isNumber(good), "\(good)") }
    }

    @Test func duplicateKeysAreKeptInOrderAndTheLastOneIsRead() throws {
        let v = try #require(JSONValue.parse(#"{"a":1,"b":2,"a":3}"#))
        #expect(v["a"] == .number("3"))
        #expect(v.encoded == #"{"a":1,"b":2,"a":3}"#)
        guard case .object(let members) = v else { Issue.record("not an object"); return }
        #expect(members.map(\.0) == ["a", "b", "a"])
    }

    @Test func whitespaceIsOnlyTheFourJSONCharacters() {
        #expect(JSONValue.parse(" \t\r\n{ \"a\" : [ 1 , 2 ] }\n ") != nil)
        #expect(JSONValue.parse("\u{0C}{}") == nil, "form feed")
        #expect(JSONValue.parse("\u{A0}{}") == nil, "no-break space")
    }
}

@Suite("JSON escaping")
struct JSONEscapingTests {
    @Test func everyControlCharacterIsEscaped() throws {
        var text = ""
        for value in 0..<0x20 { text.unicodeScalars.append(Unicode.Scalar(UInt8(value))) }
        let quoted = JSONText.quote(text)
        #expect(quoted.unicodeScalars.allSatisfy { $0.value >= 0x20 }, "no raw control character is written")
        #expect(quoted.hasPrefix(#""\u0000\u0001"#))
        #expect(quoted.contains(#"\u0008\t\n\u000b\u000c\r\u000e"#), "\\t \\n \\r by name, \\b and \\f as \\u00XX")
        #expect(JSONValue.parse(quoted)?.stringValue == text, "reads back")
    }

    /// The byte-level writer against the rule scalar by scalar, over every scalar up to U+30FF and
    /// some beyond (so each UTF-8 length, and the lead bytes C2 and E2 next to their neighbours).
    @Test(arguments: [false, true]) func byteWriterFollowsTheRuleForEveryScalar(nonPrintable: Bool) {
        var scalars = (0..<0x3100).compactMap(Unicode.Scalar.init(_:))
        scalars += [0xFEFF, 0x1F600, 0x10FFFF].compactMap(Unicode.Scalar.init(_:))
        for scalar in scalars {
            let v = scalar.value
            let expected: String
            switch scalar {
            case "\"": expected = #"\""#
            case "\\": expected = #"\\"#
            case "\n": expected = #"\n"#
            case "\r": expected = #"\r"#
            case "\t": expected = #"\t"#
            case _ where v < 0x20 || v == 0x2028 || v == 0x2029 || (nonPrintable && (0x7F...0x9F).contains(v)):
                let hex = String(v, radix: 16)
                expected = "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: expected = String(scalar)
            }
            let text = "a" + String(scalar) + "b"
            #expect(JSONText.quote(text, escapingNonPrintable: nonPrintable) == "\"a" + expected + "b\"", "U+\(String(v, radix: 16))")
        }
    }

    @Test func objectsWriteKeysAndValuesEscaped() {
        let text = JSONText.object([
            ("k\"", .string("v\u{2028}")), ("skipped", nil), ("n", .int(-3)), ("raw", .raw("[1]")), ("b", .bool(true)),
        ])
        #expect(text == #"{"k\"":"v\u2028","n":-3,"raw":[1],"b":true}"#)
    }

    @Test func quotesAndBackslashesAreEscapedAndSlashIsNot() {
        #expect(JSONText.quote(#"a"b\c/d"#) == #""a\"b\\c/d""#)
    }

    @Test func lineAndParagraphSeparatorsAreEscaped() {
        #expect(JSONText.quote("a\u{2028}b\u{2029}c") == #""a\u2028b\u2029c""#)
        #expect(JSONValue.string("\u{2028}").encoded == #""\u2028""#, "JSONValue writes strings the same way")
        #expect(JSONValue.object([("k\u{2029}", .null)]).encoded == #"{"k\u2029":null}"#, "keys too")
    }

    @Test func deleteAndC1ControlsPassUnlessAskedFor() {
        // The wire format (events, records, answers) keeps DEL and C1 as they are…
        #expect(JSONText.quote("a\u{7F}b\u{85}c") == "\"a\u{7F}b\u{85}c\"")
        // …configuration messages and check-config escape them (YAML forbids them raw).
        #expect(JSONText.quote("a\u{7F}b\u{85}c\u{9F}\u{A0}", escapingNonPrintable: true) == "\"a\\u007fb\\u0085c\\u009f\u{A0}\"")
        #expect(JSONText.quote("\u{1}\u{2028}", escapingNonPrintable: true) == #""\u0001\u2028""#)
    }

    @Test func nonASCIIIsWrittenAsItIs() {
        #expect(JSONText.quote("é😀中") == "\"é😀中\"")
        #expect(JSONValue.parse(JSONText.quote("é😀中"))?.stringValue == "é😀中")
    }

    @Test func theWriterLeavesOutNilValues() {
        let text = JSONText.object([
            ("a", .string("x")), ("b", nil), ("c", .int(-3)), ("d", .oneDecimal(12.345)),
            ("e", .double(.infinity)), ("f", .raw("[1]")), ("g", .bool(true)), ("h", .null),
        ])
        #expect(text == #"{"a":"x","c":-3,"d":12.3,"e":null,"f":[1],"g":true,"h":null}"#)
    }
}
