import Testing

@testable import WorkerConfig

@Suite("youtube.sponsorblock and youtube.chapters")
struct SponsorBlockSettingsTests {
    @Test func typedSettings() throws {
        let c = try parse(
            """
            youtube:
              sponsorblock: { api: "http://127.0.0.1:8080", remove: [sponsor, selfpromo, sponsor], mark: [intro, outro] }
              chapters: true
            """)
        #expect(
            c.youtube.sponsorBlock
                == SponsorBlockSettings(api: "http://127.0.0.1:8080", remove: ["sponsor", "selfpromo"], mark: ["intro", "outro"]))
        #expect(c.youtube.chapters)
        let d = try parse("youtube: { quality: 720p }")
        #expect(d.youtube.sponsorBlock == nil && !d.youtube.chapters)
    }

    @Test func unknownCategoryNamedWithItsLine() {
        let e = parseError(
            """
            youtube:
              sponsorblock:
                remove: [sponsor, adverts]
            """)
        #expect(e?.key == "youtube.sponsorblock.remove[1]")
        #expect(e?.line == 3)
        #expect(e?.message.contains("unknown SponsorBlock category") == true)
    }

    @Test(arguments: [
        ("youtube: { chapters: maybe }", "youtube.chapters"),
        ("youtube: { sponsorblock: { remove: sponsor } }", "youtube.sponsorblock.remove"),
        ("youtube: { sponsorblock: { api: \"ftp://x\" } }", "youtube.sponsorblock.api"),
        ("youtube: { sponsorblock: { skip: [sponsor] } }", "youtube.sponsorblock.skip"),
        ("youtube: { sponsorblock: { remove: [intro], mark: [intro] } }", "youtube.sponsorblock.mark"),
    ])
    func wrongValuesRefused(yaml: String, key: String) {
        #expect(parseError(yaml)?.key == key)
    }
}
