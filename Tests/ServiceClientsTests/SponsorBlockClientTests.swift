import Testing

@testable import ServiceClients

@Suite("SponsorBlock answers")
struct SponsorBlockClientTests {
    @Test func parsesThePublicAPIsJSONAndSkipsBadEntries() throws {
        let body = """
            [{"segment":[20.5,30],"UUID":"u1","category":"sponsor","videoDuration":60,"actionType":"skip","locked":0,"votes":3},
             {"segment":[0,5],"UUID":"u2","category":"intro","actionType":"skip"},
             {"segment":["a",5],"category":"intro"}, {"segment":[1],"category":"intro"}, 7, {"category":"outro"}]
            """
        let s = try SponsorBlockClient.parse(Array(body.utf8))
        #expect(
            s == [
                SponsorSegment(start: 20.5, end: 30, category: "sponsor", actionType: "skip", uuid: "u1"),
                SponsorSegment(start: 0, end: 5, category: "intro", actionType: "skip", uuid: "u2"),
            ])
        #expect(throws: ServiceError.self) { try SponsorBlockClient.parse(Array("{\"error\":1}".utf8)) }
    }
}
