import Synchronization
import Testing

@testable import ServiceClients

/// A transport answering from a script, recording the requests.
final class ScriptedTransport: HTTPTransport {
    enum Step: Sendable {
        case status(Int)
        case fail(ServiceError)
    }
    private let steps: Mutex<[Step]>
    private let seen = Mutex<[HTTPRequest]>([])

    init(_ steps: [Step]) { self.steps = Mutex(steps) }

    var requests: [HTTPRequest] { seen.withLock { $0 } }

    func send(_ request: HTTPRequest, service: String, timeout: Double) async throws -> HTTPResponse {
        seen.withLock { $0.append(request) }
        let step = steps.withLock { $0.isEmpty ? Step.status(200) : $0.removeFirst() }
        switch step {
        case .status(let code): return HTTPResponse(status: code, body: Array("{\"message\":\"code \(code)\"}".utf8))
        case .fail(let error): throw error
        }
    }
}

final class Outcomes: Sendable {
    private let seen = Mutex<[String]>([])
    var all: [String] { seen.withLock { $0 } }
    var record: @Sendable (String) -> Void { { [self] outcome in seen.withLock { $0.append(outcome) } } }
}

@Suite("Service caller: retries, backoff and breakers")
struct ServiceCallerTests {
    let fast = CallPolicy(timeout: 1, retries: 2, backoff: 0.001, maxBackoff: 0.002)
    let request = HTTPRequest(method: "GET", url: "http://127.0.0.1:1/x", headers: [("X-Plex-Token", "secret-token")])

    @Test func serverErrorsAreTriedAgainUntilASuccess() async throws {
        let transport = ScriptedTransport([.status(503), .status(500), .status(200)])
        let outcomes = Outcomes()
        let caller = ServiceCaller(transport: transport)
        let response = try await caller.call(request, service: "plex", policy: fast, observe: outcomes.record)
        #expect(response.status == 200)
        #expect(transport.requests.count == 3)
        #expect(outcomes.all == ["server_error", "server_error", "success"])
    }

    @Test func theLastServerErrorIsThrownWithTheServicesExplanation() async {
        let transport = ScriptedTransport([.status(502), .status(502), .status(502), .status(200)])
        let caller = ServiceCaller(transport: transport)
        await #expect(throws: ServiceError.httpStatus(service: "plex", status: 502, message: "code 502")) {
            try await caller.call(request, service: "plex", policy: fast)
        }
        #expect(transport.requests.count == 3, "one try and two more")
    }

    @Test func clientErrorsAreNotTriedAgainAndDoNotOpenTheCircuit() async {
        let transport = ScriptedTransport(Array(repeating: .status(404), count: 20))
        let caller = ServiceCaller(transport: transport)
        for _ in 0..<8 {
            await #expect(throws: ServiceError.self) { try await caller.call(request, service: "plex", policy: fast) }
        }
        #expect(transport.requests.count == 8)
        #expect(caller.breakers.snapshot()["plex"] == .closed)
    }

    @Test func connectionErrorsAreTriedAgainButTimeoutsAreNot() async {
        let refused = ScriptedTransport([.fail(.unreachable(service: "plex", reason: "refused")), .status(200)])
        let response = try? await ServiceCaller(transport: refused).call(request, service: "plex", policy: fast)
        #expect(response?.status == 200)
        #expect(refused.requests.count == 2)

        let slow = ScriptedTransport([.fail(.timedOut(service: "plex", seconds: 1)), .status(200)])
        await #expect(throws: ServiceError.timedOut(service: "plex", seconds: 1)) {
            try await ServiceCaller(transport: slow).call(request, service: "plex", policy: fast)
        }
        #expect(slow.requests.count == 1)
    }

    @Test func anOpenCircuitRefusesWithoutCallingTheService() async {
        let transport = ScriptedTransport(Array(repeating: .status(503), count: 100))
        let outcomes = Outcomes()
        let caller = ServiceCaller(transport: transport)
        let breakerPolicy = BreakerPolicy(failureThreshold: 5, window: 60, openDuration: 60)
        for _ in 0..<2 {
            await #expect(throws: ServiceError.self) {
                try await caller.call(request, service: "plex", policy: fast, breakerPolicy: breakerPolicy, observe: outcomes.record)
            }
        }
        // 2 calls × 3 tries = 6 requests, but the circuit opened after the 5th.
        #expect(transport.requests.count == 5)
        #expect(caller.breakers.holdingBack()["plex"] == true)
        do {
            _ = try await caller.call(request, service: "plex", policy: fast, breakerPolicy: breakerPolicy, observe: outcomes.record)
            Issue.record("an open circuit must refuse")
        } catch let error as ServiceError {
            guard case .circuitOpen(let service, let after) = error else { Issue.record("unexpected \(error)"); return }
            #expect(service == "plex")
            #expect(after > 50)
            #expect(error.isRetryable)
            #expect(error.description.contains("Plex is unavailable"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(transport.requests.count == 5)
        #expect(outcomes.all.filter { $0 == "circuit_open" }.count == 2)
    }

    @Test func errorsNeverCarryHeaderValues() async {
        let transport = ScriptedTransport([.status(401)])
        do {
            _ = try await ServiceCaller(transport: transport).call(request, service: "plex", policy: fast)
        } catch {
            #expect(!"\(error)".contains("secret-token"))
            #expect("\(error)".contains("401"))
        }
    }
}

@Suite("URLs")
struct URLTests {
    @Test func safeURLDropsCredentialsQueryAndFragment() {
        #expect(
            SafeURL.describe("https://user:pw@plex.local:32400/library/sections?X-Plex-Token=abc#x")
                == "https://plex.local:32400/library/sections")
        #expect(SafeURL.origin("http://u:p@[::1]:8080/a/b") == "http://[::1]:8080")
        #expect(SafeURL.host("http://u:p@[::1]:8080/a/b") == "::1")
        #expect(SafeURL.host("https://hooks.example.com/x") == "hooks.example.com")
        #expect(SafeURL.describe("not a url") == "(an invalid URL)")
    }

    @Test func urlBuilderEncodesEachValue() {
        #expect(
            URLBuilder.url(base: "http://plex:32400/", path: "/library/sections/1/refresh", query: [("path", "/data/You Tube/a&b=c")])
                == "http://plex:32400/library/sections/1/refresh?path=%2Fdata%2FYou%20Tube%2Fa%26b%3Dc")
        #expect(URLBuilder.encode("é") == "%C3%A9")
        #expect(URLBuilder.url(base: "http://h/base", path: "x") == "http://h/base/x")
    }
}

@Suite("Plex answers")
struct PlexModelTests {
    @Test func sectionsWithLocations() throws {
        let json = """
            {"MediaContainer":{"size":2,"Directory":[
              {"key":"1","title":"Movies","type":"movie","Location":[{"id":1,"path":"/data/movies"}]},
              {"key":2,"title":"YouTube","type":"movie","Location":[{"id":2,"path":"/data/youtube/"}]}]}}
            """
        let sections =
            try HTTPResponse(status: 200, body: Array(json.utf8))
            .decode(PlexEnvelope<PlexDirectories>.self, service: "plex").MediaContainer.Directory ?? []
        #expect(sections.map(\.key) == ["1", "2"])
        #expect(sections[1].contains(path: "/data/youtube/chan/a.mp4"))
        #expect(sections[1].contains(path: "/data/youtube"))
        #expect(!sections[1].contains(path: "/data/youtubers/a.mp4"))
        #expect(!sections[0].contains(path: "/data/youtube/a.mp4"))
    }

    @Test func itemsWithTheirFiles() throws {
        let json = """
            {"MediaContainer":{"Metadata":[{"ratingKey":"42","type":"movie","title":"A","Media":[{"Part":[{"file":"/data/youtube/a.mp4"}]}]},
              {"ratingKey":43,"title":"B"}]}}
            """
        let items =
            try HTTPResponse(status: 200, body: Array(json.utf8))
            .decode(PlexEnvelope<PlexMetadataList>.self, service: "plex").MediaContainer.Metadata ?? []
        #expect(
            items == [
                PlexItem(ratingKey: "42", type: "movie", title: "A", files: ["/data/youtube/a.mp4"]), PlexItem(ratingKey: "43", title: "B"),
            ])
    }

    @Test func aBadAnswerIsAnInvalidResponse() {
        #expect(throws: ServiceError.self) {
            try HTTPResponse(status: 200, body: Array("<html>".utf8)).decode(PlexEnvelope<PlexIdentity>.self, service: "plex")
        }
    }
}

@Suite("Redirects")
struct RedirectTests {
    @Test func aRedirectIsAnErrorThatNamesItAndIsNotRetried() async {
        let transport = ScriptedTransport([.status(302), .status(200)])
        let caller = ServiceCaller(transport: transport)
        do {
            _ = try await caller.call(
                HTTPRequest(method: "GET", url: "http://h/x"), service: "plex",
                policy: CallPolicy(timeout: 1, retries: 2, backoff: 0.001))
            Issue.record("a redirect must not count as an answer")
        } catch let error as ServiceError {
            #expect(error.httpStatus == 302)
            #expect(!error.isRetryable)
            #expect(error.description.contains("redirect"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(transport.requests.count == 1)
        #expect(caller.breakers.snapshot()["plex"] == .closed)
    }
}
