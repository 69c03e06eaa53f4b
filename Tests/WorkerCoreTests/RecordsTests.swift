import Foundation
import JSON
import PostgresClient
import Testing

@testable import WorkerCore

@Suite("Storable text")
struct StorableTextTests {
    @Test func plainTextPassesUnchanged() {
        #expect(StorableText.text(Array("héllo wörld".utf8)) == "héllo wörld")
        #expect(StorableText.text("no nul here") == "no nul here")
    }

    @Test func nulBecomesTheSixCharacters() {
        #expect(StorableText.text(Array("a\u{0}b".utf8)) == #"a\u0000b"#)
        #expect(StorableText.text("x\u{0}\u{0}") == #"x\u0000\u0000"#)
    }

    @Test func invalidUTF8BytesAreEscapedOneByOne() {
        #expect(StorableText.text([0x61, 0xFF, 0xFE, 0x62]) == #"a\xff\xfeb"#)
        // A truncated sequence, then valid text again.
        #expect(StorableText.text([0xE2, 0x82, 0x41]) == #"\xe2\x82A"#)
        #expect(StorableText.text([0xC3, 0xA9, 0x00, 0xC0]) == #"é\u0000\xc0"#)
    }

    @Test func jsonWithAnEscapedNULStaysValidJSONWithTheCharacters() throws {
        let stored = try #require(StorableText.json(#"{"fail":"bad\u0000text","k\u0000":[1,"\u0000"]}"#))
        let value = try #require(JSONValue.parse(stored))
        #expect(value["fail"]?.stringValue == #"bad\u0000text"#)
        guard case .object(let pairs) = value else { Issue.record("not an object"); return }
        #expect(pairs.map(\.0) == ["fail", #"k\u0000"#])
    }

    @Test func anEscapedBackslashIsNotTakenForAnEscapedNUL() {
        let document = #"{"path":"C:\\u0000dir"}"#  // a backslash, then the letters u0000
        #expect(StorableText.json(document) == document)
    }

    @Test func notJSONIsNil() {
        #expect(StorableText.json("{\"a\":\"\\u0000\" oops") == nil)
    }

    @Test func refusedJSONIsKeptAsAJSONString() throws {
        let document = #"{"n":1e999999999}"#
        let stored = StorableText.asJSONString(document)
        #expect(JSONValue.parse(stored)?.stringValue == document)
    }

    @Test func boundValuesAreEscapedAsJSONOrText() {
        #expect(StorableText.escaped(PostgresBind("t\u{0}itle")).text == #"t\u0000itle"#)
        #expect(StorableText.escaped(PostgresBind(json: #"["a\u0000"]"#)).text == #"["a\\u0000"]"#)
        #expect(StorableText.escaped(PostgresBind.null).text == nil)
    }
}

@Suite("Record batches")
struct RecordBatchTests {
    func entry(_ id: String, _ fields: [(String, String)]) -> StreamEntry {
        StreamEntry(id: id, fields: fields.map { ($0.0, Array($0.1.utf8)) })
    }

    func job(_ entryID: String, _ jobID: String, state: String, extra: [(String, String)] = []) -> StreamEntry {
        entry(
            entryID,
            [
                ("k", "job"), ("id", jobID), ("st", state), ("q", "default"), ("t", "noop"),
                ("env", #"{"id":"\#(jobID)","type":"noop","payload":{"x":1}}"#),
            ] + extra)
    }

    @Test func theNewestRecordOfAJobWinsWhateverTheOrder() throws {
        let batch = RecordBatch([
            job("1700000000000-1", "a", state: "completed", extra: [("res", #"{"ok":true}"#)]),
            job("1700000000000-0", "a", state: "active"),
            job("1700000000001-0", "b", state: "active"),
        ])
        #expect(batch.jobs.count == 2)
        let a = try #require(batch.jobs.first { $0.id == "a" })
        #expect(a.state == "completed")
        #expect(a.result == #"{"ok":true}"#)
        #expect(a.payload == #"{"x":1}"#)
        #expect(batch.malformed.isEmpty)
    }

    @Test func sequencesFollowTheStreamOrder() {
        let ids = ["1700000000000-0", "1700000000000-1", "1700000000000-10", "1700000000001-0", "1800000000000-5"]
        let seqs = ids.map { StreamEntry(id: $0, fields: []).sequence }
        #expect(seqs == seqs.sorted())
        #expect(Set(seqs).count == ids.count)
    }

    @Test func recordsThatAreNoRecordAreSetApartNotDropped() {
        let batch = RecordBatch([
            entry("1-0", [("k", "job"), ("id", "x")]),
            entry("1-1", [("k", "mystery")]),
            entry("1-2", [("nothing", "here")]),
            entry("1-3", [("k", "audit"), ("actor", "api")]),
            job("1-4", "good", state: "queued"),
        ])
        #expect(batch.jobs.map(\.id) == ["good"])
        #expect(batch.malformed.map(\.0.id) == ["1-0", "1-1", "1-2", "1-3"])
        #expect(batch.malformed[1].1.contains("mystery"))
    }

    @Test func hostileBytesInARecordAreEscapedForTheRow() throws {
        var fields: [(String, [UInt8])] = [
            ("k", Array("job".utf8)), ("id", Array("j".utf8)), ("st", Array("failed".utf8)),
            ("q", Array("default".utf8)), ("t", Array("noop".utf8)),
        ]
        fields.append(("err", Array("bad ".utf8) + [0, 0xFF] + Array(" end".utf8)))
        fields.append(("env", Array(#"{"id":"j","type":"noop","payload":{"fail":"a\u0000b"}}"#.utf8)))
        let row = try #require(RecordBatch([StreamEntry(id: "5-0", fields: fields)]).jobs.first)
        #expect(row.error == #"bad \u0000\xff end"#)
        #expect(JSONValue.parse(row.payload ?? "")?["fail"]?.stringValue == #"a\u0000b"#)
        let asText = row.withJSONAsStrings()
        #expect(JSONValue.parse(asText.payload ?? "")?.stringValue == row.payload)
    }

    /// MessagePack as the scripts write it (`cmsgpack.pack`): one value per record field, in order.
    static func packed(_ values: [[UInt8]?]) -> [UInt8] {
        var out: [UInt8] = []
        for value in values {
            guard let value else { out.append(0xC0); continue }
            if value.count < 32 { out.append(0xA0 | UInt8(value.count)) } else { out += [0xDA, UInt8(value.count >> 8), UInt8(value.count & 0xFF)] }
            out += value
        }
        return out
    }

    @Test func packedRecordsReadAsTheirFields() throws {
        let values: [[UInt8]?] = [
            Array("completed".utf8), Array("default".utf8), Array("noop".utf8), nil, Array("2".utf8), Array("3".utf8),
            Array(#"{"id":"p","type":"noop","payload":{"n":1}}"#.utf8), Array("bad ".utf8) + [0, 0xFF], Array("{}".utf8),
            Array("2026-12-04T10:00:00.000Z".utf8), nil, nil, Array("2026-12-04T10:00:01.000Z".utf8), Array("host-1".utf8),
        ]
        let entry = StreamEntry(id: "7-0", fields: [("k", Array("job".utf8)), ("id", Array("p".utf8)), ("r", Self.packed(values))])
        let row = try #require(RecordBatch([entry]).jobs.first)
        #expect(row.state == "completed" && row.queue == "default" && row.type == "noop" && row.userId == nil)
        #expect(row.attempt == 2 && row.maxAttempts == 3 && row.payload == #"{"n":1}"#)
        #expect(row.error == #"bad \u0000\xff"#, "hostile bytes in a packed value are escaped as in a plain one")
        #expect(row.createdAt == "2026-12-04T10:00:00.000Z" && row.startedAt == nil && row.worker == "host-1")
        // The dead-letter stream gets the values by name, for people to read.
        let named = JobRecordFields.named(entry)
        #expect(named.map(\.0) == ["k", "id", "st", "q", "t", "a", "m", "env", "err", "res", "c", "at", "w"])
    }

    @Test func integersAndHostilePackedValuesAreReadOrRefusedWithTheirPlace() {
        // fixint, uint8, uint16, negative fixint, int8, int32, nil, false: each as its decimal text or absent.
        let numbers: [UInt8] = [0x05, 0xCC, 0xC8, 0xCD, 0x01, 0x00, 0xFF, 0xD0, 0x80, 0xD2, 0xFF, 0xFF, 0xFF, 0xFE, 0xC0, 0xC2]
        let decoded = try? PackedValues.decode(numbers, count: 8).get()
        #expect(decoded?.map { $0.map { String(decoding: $0, as: UTF8.self) } } == ["5", "200", "256", "-1", "-128", "-2", nil, nil])
        for (bytes, problem) in [
            ([0xA5, 0x61], "a string cut short"), ([0xCD, 0x01], "an unsigned integer cut short"),
            ([0x91, 0x01], "MessagePack type 0x91"), ([0xC3], "MessagePack type 0xc3"), ([0x01, 0x02, 0x03], "more than 2 values"),
            ([0x01], "1 values where 2 are expected"), ([0xDB, 0xFF, 0xFF, 0xFF, 0xFF], "a string cut short"),
        ] as [([UInt8], String)] {
            guard case .failure(let failure) = PackedValues.decode(bytes, count: 2) else {
                Issue.record("\(bytes) was read")
                continue
            }
            #expect(failure.description.contains(problem), "\(failure)")
        }
        // A record whose packed values cannot be read is set apart with the reason; the others go on.
        let bad = StreamEntry(id: "8-0", fields: [("k", Array("job".utf8)), ("id", Array("q".utf8)), ("r", [0xA9, 0x61])])
        let batch = RecordBatch([bad, job("8-1", "fine", state: "completed")])
        #expect(batch.jobs.map(\.id) == ["fine"])
        #expect(batch.malformed.map(\.0.id) == ["8-0"])
        #expect(batch.malformed.first?.1.contains("packed values cannot be read: a string cut short") == true)
    }

    @Test func onlyAJobsNewestRecordIsDecodedAndAnUnreadableOneGivesWayToTheOneBefore() throws {
        let unreadable: [UInt8] = [0xA9, 0x61]
        func packedJob(_ entryID: String, _ jobID: String, _ r: [UInt8]) -> StreamEntry {
            StreamEntry(id: entryID, fields: [("k", Array("job".utf8)), ("id", Array(jobID.utf8)), ("r", r)])
        }
        let done = Self.packed([Array("completed".utf8), Array("default".utf8), Array("noop".utf8)] + Array(repeating: nil, count: 11))
        let active = Self.packed([Array("active".utf8), Array("default".utf8), Array("noop".utf8)] + Array(repeating: nil, count: 11))
        let batch = RecordBatch([
            // a: its older record cannot be read, but its newest (later in the stream, earlier in the batch) makes the row.
            packedJob("9-2", "a", done), packedJob("9-1", "a", unreadable),
            // b: its newest cannot be read: set apart, and the record before it makes the row.
            packedJob("9-3", "b", active), packedJob("9-4", "b", unreadable),
            job("9-5", "c", state: "active"), entry("9-6", [("k", "job"), ("id", "c"), ("st", "completed")]),
        ])
        #expect(batch.jobs.map(\.id) == ["a", "b", "c"])
        #expect(batch.jobs.map(\.state) == ["completed", "active", "active"])
        #expect(batch.jobs.map(\.seq) == [StreamEntry(id: "9-2", fields: []).sequence, StreamEntry(id: "9-3", fields: []).sequence,
            StreamEntry(id: "9-5", fields: []).sequence])
        #expect(batch.malformed.map(\.0.id) == ["9-4", "9-6"], "a's unreadable older record is never looked at")
        #expect(batch.malformed.last?.1.contains("without id, state, queue or type") == true)
    }

    @Test func auditRecordsRoundTrip() throws {
        let audit = AuditEntry(
            at: 1_700_000_000_123, actor: "uid 0 (root)", peerUID: 0, peerPID: 42, source: "socket",
            action: "pause", target: "default", ok: true, detail: "paused", controlEntry: "9-9")
        let fields = audit.outboxFields(worker: "host-1")
        let row = try #require(RecordBatch([entry("7-0", fields)]).audits.first)
        #expect(row.at == audit.at && row.actor == audit.actor && row.peerUID == 0 && row.peerPID == 42)
        #expect(row.source == "socket" && row.action == "pause" && row.target == "default" && row.ok)
        #expect(row.detail == "paused" && row.controlEntry == "9-9" && row.worker == "host-1")
    }

    @Test func onlyDataErrorsAreSetApart() {
        #expect(RecordWriter.isDataError(.query(message: "nul", sqlState: "22021", detail: nil)))
        #expect(RecordWriter.isDataError(.query(message: "json", sqlState: "22P05", detail: nil)))
        #expect(RecordWriter.isDataError(.query(message: "not null", sqlState: "23502", detail: nil)))
        #expect(!RecordWriter.isDataError(.query(message: "no table", sqlState: "42P01", detail: nil)))
        #expect(!RecordWriter.isDataError(.query(message: "shutting down", sqlState: "57P01", detail: nil)))
        #expect(!RecordWriter.isDataError(.connection("refused")))
    }
}

@Suite("Outcomes and stable ids")
struct OutcomeTests {
    @Test func stableIDsAreUUIDsThatDependOnlyOnTheKey() {
        let a = DerivedID.uuid("notification:1-0:u1")
        #expect(a == DerivedID.uuid("notification:1-0:u1"))
        #expect(a != DerivedID.uuid("notification:1-1:u1"))
        #expect(UUID(uuidString: a) != nil)
        #expect(a.count == 36 && a == a.lowercased())
    }

    @Test func anOutcomeEntryBecomesTheObserversEvent() throws {
        let fields: [(String, String)] = [
            ("id", "dl-1"), ("o", "failed"), ("q", "youtube"), ("t", "youtube.download"), ("u", "u9"), ("a", "3"), ("m", "3"),
            ("env", #"{"id":"dl-1","type":"youtube.download","payload":{"downloadId":"d-1","url":"https://youtu.be/x"}}"#),
            ("err", "gone"), ("res", #"{"path":"x"}"#), ("at", "2026-12-02T00:00:00.000Z"), ("det", "HTTP 404"),
        ]
        let vocabulary: (String) -> EventVocabulary = { $0 == "youtube.download" ? YouTubeDownloadHandler.events : .standard }
        let event = try #require(
            OutcomeDispatcher.event(
                from: StreamEntry(id: "5-1", fields: fields.map { ($0.0, Array($0.1.utf8)) }),
                vocabulary: vocabulary))
        #expect(
            event.job
                == JobDescriptor(
                    id: "dl-1", type: "youtube.download", queue: "youtube", userId: "u9",
                    events: YouTubeDownloadHandler.events, correlation: "d-1"))
        #expect(event.job.downloadId == "d-1")
        #expect(event.outcome == .failed && event.attempt == 3 && event.maxAttempts == 3)
        #expect(event.error == "gone" && event.detail == "HTTP 404" && event.result == nil)
        #expect(event.payload["url"]?.stringValue == "https://youtu.be/x")
        #expect(event.deliveryKey == "5-1")
        #expect(OutcomeDispatcher.event(from: StreamEntry(id: "5-2", fields: [("o", Array("bogus".utf8))]), vocabulary: vocabulary) == nil)
    }
}

@Suite("In-flight limit")
struct InFlightLimitTests {
    @Test func aPlaceBeyondTheLimitWaitsForOneToBeGivenBack() async throws {
        let limit = InFlightLimit(limit: 2)
        await limit.acquire()
        await limit.acquire()
        let third = Task { await limit.acquire(); return ContinuousClock.now }
        try await Task.sleep(for: .milliseconds(50))
        let released = ContinuousClock.now
        #expect(limit.count == 2)
        limit.release()
        let acquired = await third.value
        #expect(acquired >= released, "the third place was taken only once one was given back")
        #expect(limit.count == 2, "the place went to the waiter, not back to the pool")
    }
}

@Suite("Commit order")
struct CommitOrderTests {
    @Test func aBatchCommitsOnlyAfterEveryBatchReadBeforeIt() {
        let order = CommitOrder()
        let (a, b, c) = (order.take(), order.take(), order.take())
        #expect(order.isTurn(a) && !order.isTurn(b) && !order.isTurn(c))
        order.pass(b)  // b done early (it gave up): c still waits for a
        #expect(!order.isTurn(c))
        order.pass(a)
        #expect(order.isTurn(c), "a and b passed: c's turn")
        order.pass(a)  // passed twice: nothing more
        let d = order.take()
        #expect(!order.isTurn(d))
        order.pass(c)
        #expect(order.isTurn(d))
    }
}
