import Testing

@testable import WorkerConfig

@Suite("DurationParser")
struct DurationParserTests {
    static let validDurations: [(String, Double)] = [
        ("250ms", 0.25), ("5s", 5), ("10m", 600), ("2h", 7200), ("7d", 604_800), ("1w", 604_800),
        ("1h30m", 5400), ("1h 30m", 5400), ("30", 30), ("1.5", 1.5), ("1.5h", 5400), ("0", 0),
        ("  45s ", 45), ("2m30s", 150), ("1d12h", 129_600),
    ]

    @Test(arguments: validDurations)
    func parsesValidDurations(text: String, seconds: Double) {
        #expect(DurationParser.parse(text) == seconds)
    }

    @Test(arguments: [
        "", " ", "-5s", "-1", "abc", "5x", "5 s", "s", "1h30", "1..5s", "5S", "1e3", "+5s", "ten minutes", "5sm", "inf", "nan",
    ])
    func refusesInvalidDurations(text: String) {
        #expect(DurationParser.parse(text) == nil)
    }

    @Test(arguments: [0.25, 5, 600, 5400, 604_800, 2_592_000, 0, 90061.5])
    func formatReadsBack(seconds: Double) {
        #expect(DurationParser.parse(DurationParser.format(seconds)) == seconds)
    }

    @Test func formatsReadably() {
        #expect(DurationParser.format(30) == "30s")
        #expect(DurationParser.format(5400) == "1h30m")
        #expect(DurationParser.format(604_800) == "7d")
        #expect(DurationParser.format(0.25) == "250ms")
    }
}

@Suite("SizeParser")
struct SizeParserTests {
    static let validSizes: [(String, Int64)] = [
        ("1024", 1024), ("10GiB", 10 * 1_073_741_824), ("500MiB", 500 * 1_048_576), ("1.5GB", 1_500_000_000),
        ("10KiB", 10_240), ("2TiB", 2 * 1_099_511_627_776), ("10KB", 10_000), ("10Gi", 10 * 1_073_741_824),
        ("10G", 10_000_000_000), ("100B", 100), ("10 GiB", 10 * 1_073_741_824), ("10gib", 10 * 1_073_741_824),
        ("0.5KiB", 512), ("1PiB", 1_125_899_906_842_624), ("0", 0),
    ]

    @Test(arguments: validSizes)
    func parsesValidSizes(text: String, bytes: Int64) {
        #expect(SizeParser.parse(text) == bytes)
    }

    @Test(arguments: ["", "GiB", "-1GiB", "10XB", "ten", "1..5GB", "10 G B", "99999999999PiB", "1e9", "10GiBs"])
    func refusesInvalidSizes(text: String) {
        #expect(SizeParser.parse(text) == nil)
    }

    @Test func formatsInBinaryUnits() {
        #expect(SizeParser.format(10 * 1_073_741_824) == "10GiB")
        #expect(SizeParser.format(1000) == "1000")
        #expect(SizeParser.parse(SizeParser.format(1536)) == 1536)
    }
}
