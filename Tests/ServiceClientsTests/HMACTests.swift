import Testing

@testable import ServiceClients

/// HMAC-SHA256 test cases of RFC 4231, section 4.
@Suite("HMAC-SHA256")
struct HMACTests {
    static func bytes(_ hex: String) -> [UInt8] { Hex.decode(hex)! }

    @Test(
        arguments: [
            // 1
            (
                bytes(String(repeating: "0b", count: 20)), Array("Hi There".utf8),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
            ),
            // 2
            (
                Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
            ),
            // 3
            (
                bytes(String(repeating: "aa", count: 20)), bytes(String(repeating: "dd", count: 50)),
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
            ),
            // 4
            (
                bytes("0102030405060708090a0b0c0d0e0f10111213141516171819"), bytes(String(repeating: "cd", count: 50)),
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
            ),
            // 6: a key longer than the block size
            (
                bytes(String(repeating: "aa", count: 131)), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
            ),
            // 7
            (
                bytes(String(repeating: "aa", count: 131)),
                Array(
                    "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."
                        .utf8),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
            ),
        ] as [([UInt8], [UInt8], String)])
    func rfc4231(key: [UInt8], data: [UInt8], expected: String) {
        #expect(HMACSHA256.hex(key: key, message: data) == expected)
    }

    @Test func rfc4231Case5TruncatedTo128Bits() {
        let mac = HMACSHA256.mac(key: Self.bytes(String(repeating: "0c", count: 20)), message: Array("Test With Truncation".utf8))
        #expect(Hex.encode(Array(mac.prefix(16))) == "a3b6167473100ee06e0c796c2955552b")
    }

    @Test func emptyKeyAndMessage() {
        // HMAC-SHA256("", "") is a well-known constant.
        #expect(HMACSHA256.hex(key: [], message: []) == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    @Test func webhookSignatureCoversTimestampDotBody() {
        let body = Array("{\"a\":1}".utf8)
        let signature = WebhookSignature.sign(secret: "whsec", timestamp: 1_700_000_000, body: body)
        #expect(signature == "sha256=8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032")
        #expect(WebhookSignature.verify(secret: "whsec", timestamp: 1_700_000_000, body: body, signature: signature, now: 1_700_000_100))
        #expect(!WebhookSignature.verify(secret: "other", timestamp: 1_700_000_000, body: body, signature: signature, now: 1_700_000_100))
        #expect(
            !WebhookSignature.verify(
                secret: "whsec", timestamp: 1_700_000_000, body: body + [0x20], signature: signature, now: 1_700_000_100))
        #expect(
            !WebhookSignature.verify(secret: "whsec", timestamp: 1_700_000_000, body: body, signature: signature, now: 1_700_000_301),
            "an old timestamp is refused")
    }

    @Test func webhookRequestCarriesBothHeaders() {
        let request = WebhookClient.request(
            url: "https://hooks.example/x?token=abc", secret: "whsec", event: "job:completed",
            deliveryID: "d1", timestamp: 1_700_000_000, body: Array("{\"a\":1}".utf8))
        #expect(request.method == "POST")
        #expect(request.header("X-MediaNest-Timestamp") == "1700000000")
        #expect(request.header("x-medianest-signature") == "sha256=8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032")
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.logDescription == "POST https://hooks.example/x", "query values never reach logs")
    }

    @Test func hexRoundTrip() {
        #expect(Hex.decode("00ff10Ab") == [0, 255, 16, 171])
        #expect(Hex.decode("0") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Hex.encode([0, 255, 16, 171]) == "00ff10ab")
    }
}
