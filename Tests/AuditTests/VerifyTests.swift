import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import PostgresNIO
import TestSupport
import Testing

@testable import Audit

/// `GET /chain/verify` without a ledger: the chain itself.
@Suite struct VerifyTests {
    @Test func anIntactChainVerifiesInWholeAndInPart() async throws {
        let fixture = try await AuditFixture.make("verify")
        try await fixture.app().test(.router) { client in
            let admin = try await fixture.admin()
            let empty = try await client.verifyChain(token: admin)
            #expect(empty.valid == true && empty.checked == 0 && empty.json["to"]?.intValue == 0 && empty.json["head"] == .null)

            // More than two chunks of rows.
            try await fixture.store(1...2345, on: client)
            let whole = try await client.verifyChain(token: admin)
            #expect(whole.valid == true && whole.checked == 2345 && whole.problems.isEmpty, "\(whole.json.serializedString)")
            #expect(whole.json["from"]?.intValue == 1 && whole.json["to"]?.intValue == 2345)
            let stored = try await fixture.storedEvents()
            #expect(whole.json["head"]?.stringValue == stored.last?.hash.base64String)
            #expect(whole.anchors?["checked"]?.intValue == 0 && whole.anchors?["lastAnchoredSeq"] == .null)

            let part = try await client.verifyChain("?from=999&to=1001", token: admin)
            #expect(part.valid == true && part.checked == 3 && part.json["head"]?.stringValue == stored[1000].hash.base64String)
            #expect(try await client.verifyChain("?from=2000", token: admin).checked == 346)
        }
    }

    @Test func anEditedEventIsReported() async throws {
        let fixture = try await AuditFixture.make("verifyedit")
        try await fixture.app().test(.router) { client in
            try await fixture.store(1...10, on: client)
            // Still canonical JSON with its own id: only the hash gives it away.
            try await fixture.tamper([#"UPDATE audit_events SET event = replace(event, '"outcome":"0"', '"outcome":"4"') WHERE seq = 5"#])
            let answer = try await client.verifyChain(token: try await fixture.admin())
            #expect(answer.valid == false && answer.checked == 10)
            #expect(answer.problemSeqs == [5], "\(answer.json.serializedString)")
            #expect(answer.problems.first?.problem.contains("hash") == true)
            // Its hash recomputed too: the next link breaks.
            let rows = try await fixture.storedEvents()
            let rehashed = ByteBuffer(bytes: ChainHash.next(rows[3].hash, Array(rows[4].text.utf8)))
            try await fixture.tamper(["UPDATE audit_events SET hash = \(rehashed) WHERE seq = 5"])
            #expect(try await client.verifyChain(token: try await fixture.admin()).problemSeqs == [6])
            // Not in RFC 8785 form.
            try await fixture.tamper(["UPDATE audit_events SET event = event || ' ' WHERE seq = 8"])
            let spaced = try await client.verifyChain("?from=8&to=8", token: try await fixture.admin())
            #expect(spaced.problemSeqs == [8, 8] && spaced.problems[0].problem.contains("RFC 8785"))
        }
    }

    @Test func aDeletedEventIsReported() async throws {
        let fixture = try await AuditFixture.make("verifydelete")
        try await fixture.app().test(.router) { client in
            try await fixture.store(1...10, on: client)
            try await fixture.delete(4...5)
            let admin = try await fixture.admin()
            let answer = try await client.verifyChain(token: admin)
            #expect(answer.valid == false && answer.checked == 8)
            #expect(answer.problemSeqs == [4] && answer.problems[0].problem.contains("events 4 to 5 are missing"), "\(answer.json.serializedString)")
            // A range starting after the gap cannot check its first link.
            #expect(try await client.verifyChain("?from=6", token: admin).problemSeqs == [5])
            // Deleted at the end: the head row still says 10.
            try await fixture.delete(9...10)
            let tail = try await client.verifyChain(token: admin)
            #expect(tail.problemSeqs == [4, 10] && tail.json["to"]?.intValue == 8, "\(tail.json.serializedString)")
            // Asked about events that are not there.
            #expect(try await client.verifyChain("?from=7&to=10", token: admin).problemSeqs == [9, 10])
        }
    }

    @Test func swappedEventsAreReported() async throws {
        let fixture = try await AuditFixture.make("verifyswap")
        try await fixture.app().test(.router) { client in
            try await fixture.store(1...10, on: client)
            // Events 5 and 6 trade places, each with its own hash.
            try await fixture.tamper([
                """
                UPDATE audit_events e SET event = o.event, hash = o.hash FROM audit_events o
                WHERE (e.seq, o.seq) IN ((5, 6), (6, 5))
                """
            ])
            let answer = try await client.verifyChain(token: try await fixture.admin())
            #expect(answer.valid == false)
            // Both in the wrong place, neither links, and the event after them links to the wrong hash.
            #expect(answer.problemSeqs == [5, 5, 6, 6, 7], "\(answer.json.serializedString)")
            #expect(answer.problems[0].problem.contains("id 6") && answer.problems[2].problem.contains("id 5"))
        }
    }

    @Test func onlyAdminsVerifyAndBadRangesAreRefused() async throws {
        let fixture = try await AuditFixture.make("verifyauth")
        try await fixture.app().test(.router) { client in
            try await fixture.store(1...3, on: client)
            #expect(try await client.send(.get, "/chain/verify", token: nil).status == .unauthorized)
            for token in [try await fixture.doctor(), try await fixture.patient(), try await fixture.writer()] {
                let answer = try await client.send(.get, "/chain/verify", token: token)
                #expect(answer.status == .forbidden && answer.contentType == "application/problem+json")
            }
            let admin = try await fixture.admin()
            // The largest `to` there is: everything after 3 is missing.
            let far = try await client.verifyChain("?to=9223372036854775807", token: admin)
            #expect(far.checked == 3 && far.problemSeqs == [4] && far.problems[0].problem.contains("4 to 9223372036854775807"))
            for query in ["?from=0", "?from=x", "?to=-1", "?from=3&to=2", "?from=4", "?to=1.5", "?to=9223372036854775808"] {
                let answer = try await client.send(.get, "/chain/verify" + query, token: admin)
                #expect(answer.status == .badRequest && answer.contentType == "application/problem+json", "\(query): \(answer.text)")
            }
            #expect(try await client.send(.post, "/chain/verify", token: admin).status == .methodNotAllowed)
        }
    }
}
