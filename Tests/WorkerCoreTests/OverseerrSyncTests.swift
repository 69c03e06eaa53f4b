import Foundation
import JSON
import Testing

@testable import WorkerCore

@Suite("Overseerr sync: status mapping and the forward-only rule")
struct OverseerrSyncTests {
    typealias P = MediaRequestProgress

    @Test func requestAndMediaStatusesMapToRowStatuses() {
        // Request status 1 pending approval: nothing to move to, whatever the media is doing.
        #expect(P.target(requestStatus: 1, mediaStatus: 1) == nil)
        #expect(P.target(requestStatus: 1, mediaStatus: 2) == nil)
        #expect(P.target(requestStatus: 1, mediaStatus: nil) == nil)
        // 2 approved: approved while the media is pending, processing or partially available.
        for media in [1, 2, 3, 4, 6] {
            #expect(P.target(requestStatus: 2, mediaStatus: media) == P.Target(status: "approved"), "media \(media)")
        }
        #expect(P.target(requestStatus: 2, mediaStatus: nil) == P.Target(status: "approved"))
        // Media 5 available completes the request, approved or not yet.
        #expect(P.target(requestStatus: 2, mediaStatus: 5) == P.Target(status: "completed"))
        #expect(P.target(requestStatus: 1, mediaStatus: 5) == P.Target(status: "completed"))
        // Request status 5 (completed, newer Overseerr) completes too.
        #expect(P.target(requestStatus: 5, mediaStatus: 3) == P.Target(status: "completed"))
        // 3 declined and 4 failed fail the request, with the reason.
        #expect(P.target(requestStatus: 3, mediaStatus: 2) == P.Target(status: "failed", reason: "declined in Overseerr"))
        #expect(
            P.target(requestStatus: 3, mediaStatus: 1, modifiedBy: "admin")
                == P.Target(status: "failed", reason: "declined in Overseerr by admin"))
        #expect(P.target(requestStatus: 4, mediaStatus: 2)?.status == "failed")
        #expect(P.target(requestStatus: 4, mediaStatus: 2)?.reason?.contains("Radarr or Sonarr") == true)
        // Codes this daemon does not know leave the row alone.
        #expect(P.target(requestStatus: 9, mediaStatus: 1) == nil)
        #expect(P.target(requestStatus: 0, mediaStatus: nil) == nil)
    }

    @Test func rowsMoveOnlyForward() {
        #expect(P.moves(from: "submitted", to: "approved"))
        #expect(P.moves(from: "submitted", to: "completed"))
        #expect(P.moves(from: "submitted", to: "failed"))
        #expect(P.moves(from: "approved", to: "completed"))
        #expect(P.moves(from: "approved", to: "failed"))
        // Never twice, never backwards, never out of a final status.
        #expect(!P.moves(from: "submitted", to: "submitted"))
        #expect(!P.moves(from: "approved", to: "approved"))
        #expect(!P.moves(from: "approved", to: "submitted"))
        for final in ["completed", "failed"] {
            for target in ["submitted", "approved", "completed", "failed"] {
                #expect(!P.moves(from: final, to: target), "\(final) → \(target)")
            }
        }
        // Rows the sync does not own: not yet submitted, cancelled, or in a status the API set.
        for other in ["pending", "cancelled", "available", "", "SUBMITTED"] {
            #expect(!P.moves(from: other, to: "completed"), "\(other)")
            #expect(!P.moves(from: other, to: "approved"), "\(other)")
        }
        #expect(!P.moves(from: "submitted", to: "available"), "only the statuses the sync writes")
    }

    @Test func theUpdateOnlyTakesRowsThatMayMove() {
        #expect(P.sources(of: "approved") == ["submitted"])
        #expect(P.sources(of: "completed") == ["submitted", "approved"])
        #expect(P.sources(of: "failed") == ["submitted", "approved"])
        #expect(P.sources(of: "submitted") == [])
    }

    @Test func aSequenceOfStatesMovesEachRowOnce() {
        // What a row goes through when Overseerr's answer changes between runs (and repeats).
        let answers: [(Int, Int?)] = [(1, 2), (2, 3), (2, 3), (2, 4), (2, 5), (2, 5), (3, 5), (1, 2)]
        var status = "submitted"
        var moves: [String] = []
        for (request, media) in answers {
            guard let target = P.target(requestStatus: request, mediaStatus: media), P.moves(from: status, to: target.status) else {
                continue
            }
            status = target.status
            moves.append(status)
        }
        #expect(moves == ["approved", "completed"])
    }

    @Test func payloadSchemas() {
        let registry = HandlerRegistry.standard()
        func problem(_ type: String, _ text: String) -> String? {
            registry.schema(for: type)?.validate(JSONValue.parse(text)!)
        }
        #expect(problem("overseerr.sync", "{}") == nil)
        #expect(problem("overseerr.sync", #"{"limit":10}"#) == nil)
        #expect(problem("overseerr.sync", #"{"limit":"10"}"#) == "payload.limit must be a whole number from 1 to 1000000")

        let base = #""type":"info","title":"Hello","message":"Hi""#
        #expect(problem("notification.send", "{\(base),\"userIds\":[\"a\",\"b\"]}") == nil)
        #expect(problem("notification.send", "{\(base),\"audience\":{\"all\":true}}") == nil)
        #expect(problem("notification.send", "{\(base),\"audience\":{\"role\":\"ADMIN\"},\"metadata\":{\"k\":1}}") == nil)
        #expect(problem("notification.send", "{\(base)}") == "payload.userIds or payload.audience is required")
        #expect(
            problem("notification.send", "{\(base),\"userIds\":[\"a\"],\"audience\":{\"all\":true}}")
                == "payload.userIds and payload.audience cannot both be given")
        #expect(
            problem("notification.send", "{\(base),\"userIds\":\"a\"}")
                == "payload.userIds must be a list of 1 to 100000 strings of 1 to 128 characters")
        #expect(
            problem("notification.send", "{\(base),\"userIds\":[\"a\",7]}") == "payload.userIds[1] must be a string of 1 to 128 characters")
        #expect(problem("notification.send", "{\(base),\"audience\":{\"all\":false}}")?.hasPrefix("payload.audience must be") == true)
        #expect(problem("notification.send", "{\(base),\"audience\":{\"all\":\"yes\"}}") == "payload.audience.all must be true or false")
        #expect(problem("notification.send", #"{"userIds":["a"],"title":"t","message":"m"}"#) == "payload.type is required")
        #expect(problem("notification.send", "{\(base),\"userIds\":[\"a\"],\"metadata\":[1]}") == "payload.metadata must be an object")
        #expect(
            problem("notification.send", #"{"userIds":["a"],"type":"info","title":"t","message":5}"#) == "payload.message must be a string")
    }

    @Test func rowIDsAreStablePerJobAndUser() {
        let a = NotificationSendHandler.rowID(jobID: "job-1", userID: "u1")
        #expect(a == NotificationSendHandler.rowID(jobID: "job-1", userID: "u1"))
        #expect(a != NotificationSendHandler.rowID(jobID: "job-1", userID: "u2"))
        #expect(a != NotificationSendHandler.rowID(jobID: "job-2", userID: "u1"))
        #expect(UUID(uuidString: a) != nil)
    }
}
