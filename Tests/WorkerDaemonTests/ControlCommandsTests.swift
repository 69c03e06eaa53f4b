import Foundation
import Logging
import Testing
import WorkerConfig

@testable import WorkerCore
@testable import WorkerDaemon

@Suite("Control requests")
struct ControlRequestTests {
    let commands: ControlCommands
    let peer = ControlPeer(pid: 1, uid: 0, gid: 0, groups: [])

    init() throws {
        var cfg = WorkerConfiguration()
        cfg.redis.url = "redis://127.0.0.1:1/0"
        cfg.postgres.url = "postgres://nobody@127.0.0.1:1/none"
        let worker = try Worker(configuration: cfg, logger: Logger(label: "test"))
        commands = ControlCommands(worker: worker, reload: { nil })
    }

    func answer(_ line: String) async -> [String: Any] {
        let text = await commands.handle(Array(line.utf8), peer: peer)
        #expect(!text.contains("\n"), "one line")
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test func malformedRequestsAreAnsweredWithASentence() async {
        let cases: [(String, String)] = [
            ("nope", "not valid JSON"), ("[]", "not a JSON object"), ("{}", "no \"cmd\""),
            (#"{"cmd":"launch"}"#, "unknown cmd"), (#"{"cmd":"pause"}"#, "needs \"queue\""),
            (#"{"cmd":"pause","queue":"zzz"}"#, "no queue named \"zzz\""),
            (#"{"cmd":"cancel","jobId":""}"#, "jobId"), (#"{"cmd":"retry","jobId":7}"#, "needs \"jobId\""),
        ]
        for (line, expected) in cases {
            let a = await answer(line)
            #expect(a["ok"] as? Bool == false, "\(line)")
            #expect((a["error"] as? String)?.contains(expected) == true, "\(line): \(a)")
        }
    }

    @Test func theRequestIdIsEchoed() async {
        let a = await answer(#"{"cmd":"launch","id":{"n":1}}"#)
        #expect((a["id"] as? [String: Any])?["n"] as? Int == 1)
    }

    @Test func drainNeedsNoRedis() async {
        let a = await answer(#"{"cmd":"drain"}"#)
        #expect(a["ok"] as? Bool == true && a["draining"] as? Bool == true)
        #expect(commands.worker.isDraining)
    }

    @Test func peersAreNamed() {
        #expect(ControlPeer(pid: 5, uid: 0, gid: 0, groups: []).description == "uid 0 (root)")
        #expect(ControlPeer(pid: 5, uid: 4_000_000, gid: 0, groups: []).description == "uid 4000000")
    }
}
