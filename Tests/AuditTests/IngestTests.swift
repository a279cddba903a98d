import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import PostgresNIO
import TestSupport
import Testing

@testable import Audit

@Suite struct IngestTests {
    @Test func eventsAreStampedCanonicalisedAndChained() async throws {
        let fixture = try await AuditFixture.make("ingest")
        // A client's id and meta.versionId are the server's to set; other meta and decimal text survive (as RFC 8785 numbers).
        let stamped =
            #"{"resourceType":"AuditEvent","id":"mine","meta":{"versionId":"7","security":[{"code":"HTEST"}]},"#
            + #""extension":[{"url":"urn:x","valueDecimal":1.50}],"#
            + sampleEvent(3, patient: "p2").dropFirst(#"{"resourceType":"AuditEvent","#.count)
        let before = Date()
        let answer = try await fixture.app().test(.router) { client in
            try await client.postEvents(
                [("k1", sampleEvent(1)), ("k2", sampleEvent(2, patient: nil)), ("k3", stamped)],
                token: try await fixture.writer()
            )
        }
        #expect(answer.status == .ok, "\(answer.text)")
        #expect(answer.contentType == "application/json")
        #expect(answer.json?["events"]?.arrayValue?.map { $0["idempotencyKey"]?.stringValue } == ["k1", "k2", "k3"])
        #expect(answer.eventIDs == ["1", "2", "3"] && answer.duplicates == [false, false, false])

        let rows = try await fixture.storedEvents()
        #expect(rows.map(\.seq) == [1, 2, 3] && rows.map(\.key) == ["k1", "k2", "k3"])
        var previous = [UInt8](repeating: 0, count: 32)
        for row in rows {
            let event = try JSONParser.parse(row.text)
            // Stored in RFC 8785 form, with the id its seq and the time it joined the chain.
            #expect(try event.canonicalized() == Array(row.text.utf8))
            #expect(event["id"] == .string(String(row.seq)))
            let lastUpdated = try #require(event["meta"]?["lastUpdated"]?.stringValue.flatMap { FHIRDate.range(of: $0, kind: .instant) })
            #expect(lastUpdated.low >= before.addingTimeInterval(-0.001) && lastUpdated.low <= Date())
            // The chain, recomputed here: SHA3-256(previous ‖ stored text) from 32 zero bytes.
            var hasher = SHA3_256()
            hasher.update(data: previous)
            hasher.update(data: Array(row.text.utf8))
            previous = Array(hasher.finalize())
            #expect(row.hash == previous, "hash of \(row.seq)")
        }
        let third = try JSONParser.parse(rows[2].text)
        #expect(third["meta"]?["versionId"] == nil && third["meta"]?["security"] != nil)
        #expect(rows[2].text.contains(#""valueDecimal":1.5}"#) && rows[2].text.hasPrefix(#"{"action":"R","agent":"#))
        let head = try await withPostgres(fixture.databaseURL) { client in
            try await client.query("SELECT seq, hash FROM audit_chain_head", logger: testLogger).collect()[0].decode((Int64, ByteBuffer).self)
        }
        #expect(head.0 == 3 && Array(head.1.readableBytesView) == previous)
        // Search columns and the patient index, from the received event.
        #expect(try await fixture.count("SELECT count(*) FROM audit_patient_events") == 2)
        #expect(try await fixture.count("SELECT seq FROM audit_patient_events WHERE patient = 'Patient/p2'") == 3)
        let columns = try await withPostgres(fixture.databaseURL) { client in
            try await client.query(
                "SELECT action, outcome, types, subtypes, agents, entities FROM audit_events WHERE seq = 1",
                logger: testLogger
            )
            .collect()[0].decode((String?, String?, [String], [String], [String], [String]).self)
        }
        #expect(columns.0 == "R" && columns.1 == "0")
        #expect(columns.2 == ["http://terminology.hl7.org/CodeSystem/audit-event-type|rest", "rest"])
        #expect(columns.3 == ["http://hl7.org/fhir/restful-interaction|read", "read"])
        #expect(columns.4 == ["Practitioner/d1", "urn:medledger:identity:user|u1"])
        #expect(columns.5 == ["DiagnosticReport/r1", "DiagnosticReport/r1/_history/1", "Patient/p1"])
    }

    @Test func retriesWithTheSameKeysStoreNothingTwice() async throws {
        let fixture = try await AuditFixture.make("retry")
        try await fixture.app().test(.router) { client in
            let token = try await fixture.writer()
            let first = try await client.postEvents([("a", sampleEvent(1)), ("b", sampleEvent(2))], token: token)
            #expect(first.eventIDs == ["1", "2"])
            let again = try await client.postEvents([("a", sampleEvent(1)), ("b", sampleEvent(2))], token: token)
            #expect(again.status == .ok && again.eventIDs == ["1", "2"] && again.duplicates == [true, true])
            // Old and new keys mixed, and a key repeated within the batch: the first occurrence counts.
            let mixed = try await client.postEvents(
                [("c", sampleEvent(3)), ("b", sampleEvent(9)), ("c", sampleEvent(4)), ("d", sampleEvent(5))],
                token: token
            )
            #expect(mixed.eventIDs == ["3", "2", "3", "4"] && mixed.duplicates == [false, true, true, false])
        }
        #expect(try await fixture.storedEvents().map(\.key) == ["a", "b", "c", "d"])
        #expect(try await fixture.count("SELECT count(*) FROM audit_patient_events") == 4)
    }

    @Test func oneBadEventRefusesTheWholeBatch() async throws {
        let fixture = try await AuditFixture.make("atomic")
        let noRequestor = sampleEvent(2).replacingOccurrences(of: #""requestor":true,"#, with: "")
        try await fixture.app(["AUDIT_BATCH_LIMIT": "3"]).test(.router) { client in
            let token = try await fixture.writer()
            let answer = try await client.postEvents([("a", sampleEvent(1)), ("b", noRequestor), ("c", sampleEvent(3))], token: token)
            #expect(answer.status == .unprocessableContent)
            #expect(answer.contentType == "application/problem+json")
            #expect(answer.json?["detail"]?.stringValue?.contains("events[1].event") == true, "\(answer.text)")
            #expect(answer.json?["detail"]?.stringValue?.contains("AuditEvent.agent[0].requestor") == true, "\(answer.text)")

            let invalid: [(String, String)] = [
                ("resourceType", sampleEvent(1).replacingOccurrences(of: #""AuditEvent""#, with: #""Patient""#)),
                (
                    "type",
                    sampleEvent(1).replacingOccurrences(
                        of: #""type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"},"#,
                        with: ""
                    )
                ),
                ("recorded", sampleEvent(1, recorded: "2025-11-21")),
                ("agent", sampleEvent(1).replacingOccurrences(of: #""agent":[{"#, with: #""agentx":[{"#)),
                ("observer", sampleEvent(1).replacingOccurrences(of: #""observer""#, with: #""observerx""#)),
                ("action", sampleEvent(1).replacingOccurrences(of: #""action":"R""#, with: #""action":"read""#)),
                ("requestor", sampleEvent(1).replacingOccurrences(of: #""requestor":true"#, with: #""requestor":"yes""#)),
                (
                    "integer",
                    sampleEvent(1).replacingOccurrences(
                        of: #""outcome":"0""#,
                        with: #""outcome":"0","extension":[{"url":"urn:x","valueInteger64":12345678901234567890}]"#
                    )
                ),
            ]
            for (name, event) in invalid {
                let refused = try await client.postEvents([("ok", sampleEvent(1)), ("bad", event)], token: token)
                #expect(refused.status == .unprocessableContent, "\(name): \(refused.text)")
                #expect(refused.json?["detail"]?.stringValue?.hasPrefix("events[1].event") == true, "\(name): \(refused.text)")
            }
            let malformed: [(String, HTTPResponse.Status)] = [
                ("[]", .badRequest), (#"{"events":{}}"#, .badRequest), (#"{"events":[]}"#, .badRequest), (#"{"entries":[]}"#, .badRequest),
                (#"{"events":[{"event":\#(sampleEvent(1))}]}"#, .badRequest),
                (#"{"events":[{"idempotencyKey":"","event":\#(sampleEvent(1))}]}"#, .badRequest),
                (#"{"events":[{"idempotencyKey":"\#(String(repeating: "k", count: 201))","event":\#(sampleEvent(1))}]}"#, .badRequest),
                (#"{"events":[{"idempotencyKey":"k","event":"text"}]}"#, .badRequest),
                (#"{"events":[{"idempotencyKey":"k","event":\#(sampleEvent(1)),"extra":1}]}"#, .badRequest),
                ("{\"events\":[", .badRequest),
            ]
            for (body, status) in malformed {
                let refused = try await client.send(.post, "/events", token: token, body: body)
                #expect(refused.status == status, "\(body.prefix(80)): \(refused.text)")
                #expect(refused.contentType == "application/problem+json")
            }
            // Too many events, and one too large in canonical form.
            let four = try await client.postEvents((1...4).map { ("n\($0)", sampleEvent($0)) }, token: token)
            #expect(four.status == .contentTooLarge, "\(four.text)")
            let padding = String(repeating: "x", count: AuditConfig.eventMaxBytes)
            let large = sampleEvent(1).replacingOccurrences(of: #""outcome":"0""#, with: #""outcome":"0","outcomeDesc":"\#(padding)""#)
            let tooLarge = try await client.postEvents([("ok", sampleEvent(1)), ("big", large)], token: token)
            #expect(tooLarge.status == .contentTooLarge && tooLarge.json?["detail"]?.stringValue?.hasPrefix("events[1].event") == true)
            let keyAtLimit = try await client.postEvents([(String(repeating: "k", count: 200), sampleEvent(1))], token: token)
            #expect(keyAtLimit.status == .ok, "\(keyAtLimit.text)")
            let wrongType = try await client.send(.post, "/events", token: token, body: "x", headers: [.contentType: "text/plain"])
            #expect(wrongType.status == .unsupportedMediaType)
            #expect(try await client.send(.get, "/events", token: token).status == .methodNotAllowed)
        }
        // Only the one valid request was stored.
        #expect(try await fixture.storedEvents().map(\.seq) == [1])
    }

    @Test func onlyServicesWithTheWriteScopeMayAppend() async throws {
        let fixture = try await AuditFixture.make("ingestauth")
        try await fixture.app().test(.router) { client in
            let events = [("k", sampleEvent(1))]
            #expect(try await client.postEvents(events, token: nil).status == .unauthorized)
            #expect(try await client.postEvents(events, token: "not-a-token").status == .unauthorized)
            for token in [
                try await fixture.doctor(), try await fixture.admin(), try await fixture.patient(),
                try await fixture.token(.service, scope: Scope.ledgerAppend),
                // An EHR client is not one of MedLedger's services, whatever scopes it holds.
                try await fixture.token(.system, scope: Scope.auditWrite),
            ] {
                let answer = try await client.postEvents(events, token: token)
                #expect(answer.status == .forbidden && answer.contentType == "application/problem+json", "\(answer.text)")
            }
        }
        #expect(try await fixture.storedEvents().isEmpty)
    }

    @Test func theChainTablesAreAppendOnly() async throws {
        let fixture = try await AuditFixture.make("appendonly")
        try await fixture.app().test(.router) { client in
            let answer = try await client.postEvents([("a", sampleEvent(1))], token: try await fixture.writer())
            #expect(answer.status == .ok)
        }
        for statement: PostgresQuery in [
            "UPDATE audit_events SET event = '{}' WHERE seq = 1", "DELETE FROM audit_events WHERE seq = 1", "TRUNCATE audit_events CASCADE",
            "DELETE FROM audit_patient_events", "TRUNCATE audit_patient_events",
        ] {
            await #expect(throws: (any Error).self, "\(statement.sql)") { try await fixture.execute(statement) }
        }
        #expect(try await fixture.storedEvents().count == 1)
    }

    /// Two audit processes on one database, each with concurrent requests: one gapless chain.
    @Test func concurrentWritersKeepOneChain() async throws {
        let fixture = try await AuditFixture.make("concurrent")
        let token = try await fixture.writer()
        try await fixture.app().test(.router) { first in
            try await fixture.app().test(.router) { second in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for request in 0..<40 {
                        group.addTask {
                            let client: any TestClientProtocol = request % 2 == 0 ? first : second
                            let events = (0..<10).map { ("r\(request)-\($0)", sampleEvent(request * 10 + $0, patient: "p\(request % 3)")) }
                            let answer = try await client.postEvents(events, token: token)
                            #expect(answer.status == .ok && answer.eventIDs.count == 10, "\(answer.text)")
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }
        let rows = try await fixture.storedEvents()
        #expect(rows.map(\.seq) == Array(1...400))
        var previous = ChainHash.genesis
        for row in rows {
            previous = ChainHash.next(previous, Array(row.text.utf8))
            #expect(row.hash == previous, "hash of \(row.seq)")
            #expect(try JSONParser.parse(row.text)["id"] == .string(String(row.seq)))
        }
    }
}
