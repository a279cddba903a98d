import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import MedLedgerCore
import PostgresNIO
import TestSupport
import Testing

@testable import Consent

/// Delivery of an audit outbox (Shared `AuditDelivery`, the same for identity, records and
/// consent) against consent's real schema in PostgreSQL and a peer with audit's `POST /events`
/// contract: in order, removed only once acknowledged, retried with the same keys, shared by
/// concurrent workers without duplicates.
@Suite struct AuditDeliveryTests {
    /// A migrated consent database holding `count` outbox rows (each event with `padding`
    /// bytes of filler); returns their keys in order.
    static func outbox(_ name: String, rows count: Int, padding: Int = 0) async throws -> (url: String, keys: [String]) {
        let url = try await TestDatabase.create(prefix: name)
        let keys = try await withPostgres(url) { postgres in
            try await Migrator.migrate(ConsentMigrations.all, client: postgres, logger: testLogger)
            var keys: [String] = []
            for n in 0..<count {
                let event = Self.event(outcomeDesc: String(n), padding: padding)
                let row = AuditOutboxRow(service: "consent", event: event)
                try await postgres.withConnection { try await row.insert(on: $0, logger: testLogger) }
                keys.append(row.key)
            }
            return keys
        }
        return (url, keys)
    }

    /// A valid R4 AuditEvent (as audit takes it) told apart by its `outcomeDesc`, with `padding`
    /// bytes of filler in an entity's description.
    static func event(outcomeDesc: String, padding: Int = 0, patient: String = "Patient/p1") -> JSONValue {
        var entity = AuditEventParts.patientEntity(patient)
        if padding > 0 { entity = AuditEventParts.patientEntity(patient, description: String(repeating: "x", count: padding)) }
        return .object([
            ("resourceType", .string("AuditEvent")), ("type", AuditEventParts.restType), ("action", .string("R")),
            ("recorded", .string("2026-11-21T10:00:00.000Z")), ("outcome", .string("0")), ("outcomeDesc", .string(outcomeDesc)),
            ("agent", .array([.object([("who", .object([("reference", .string("Practitioner/d1"))])), ("requestor", .bool(true))])])),
            ("source", AuditEventParts.source(site: "medledger-consent", type: ("4", "Application Server"))), ("entity", .array([entity])),
        ])
    }

    static func remainingKeys(_ postgres: PostgresClient) async throws -> [String] {
        let rows = try await postgres.query("SELECT idempotency_key FROM audit_outbox ORDER BY id", logger: testLogger).collect()
        return try rows.map { try $0.decode(String.self) }
    }

    static func delivery(_ postgres: PostgresClient, peer: URL, batchLimit: Int) -> AuditDelivery {
        let tokens = ServiceTokenClient(identityURL: peer, credentials: .init(clientID: "consent", clientSecret: "secret"), logger: testLogger)
        return AuditDelivery(postgres: postgres, client: ServiceClient(tokens: tokens), auditURL: peer, batchLimit: batchLimit, logger: testLogger)
    }

    /// `body` with the delivery of a new outbox of `rows` rows (their keys in order) to `peer`.
    static func delivering(
        _ name: String, rows: Int, padding: Int = 0, batchLimit: Int, to peer: AuditEventsPeer,
        _ body: @Sendable (AuditDelivery, PostgresClient, [String]) async throws -> Void
    ) async throws {
        let (url, keys) = try await outbox(name, rows: rows, padding: padding)
        try await peer.serve { base in
            try await withPostgres(url) { postgres in try await body(delivery(postgres, peer: base, batchLimit: batchLimit), postgres, keys) }
        }
    }

    @Test func deliversInOrderAndRemovesWhatAuditAcknowledged() async throws {
        let peer = AuditEventsPeer()
        try await Self.delivering("deliveryorder", rows: 7, batchLimit: 3, to: peer) { (delivery, postgres, keys) async throws in
            #expect(try await delivery.deliverBatch() == 3)
            #expect(try await Self.remainingKeys(postgres) == Array(keys[3...]))
            #expect(try await delivery.deliverBatch() == 3)
            #expect(try await delivery.deliverBatch() == 1)
            #expect(try await delivery.deliverBatch() == 0)
            #expect(try await Self.remainingKeys(postgres).isEmpty)
            #expect(await peer.requests == [Array(keys[0..<3]), Array(keys[3..<6]), [keys[6]]])
        }
        // The events arrive as stored: the same JSON, in the same order.
        #expect(await peer.events.map { $0["outcomeDesc"] } == (0..<7).map { JSONValue.string(String($0)) })
    }

    /// Audit refuses a batch holding an event that is not a valid AuditEvent, which would hold
    /// up the outbox: what users typed goes out with control characters as "?" (tab, CR and LF
    /// stay), and an event still invalid goes as a valid stand-in that carries it whole.
    @Test func eventsGoOutValidAndAnInvalidOneAsAStandInCarryingIt() async throws {
        let peer = AuditEventsPeer()
        let typed = Self.event(outcomeDesc: "a\u{1}b\u{7F}c\td")
        let broken = Self.event(outcomeDesc: "broken", patient: "Patient/p2").setting(["agent"], .array([.object([("who", .object([("reference", .string("Practitioner/%%"))])), ("requestor", .bool(true))])]))
        try await Self.delivering("deliverystrings", rows: 0, batchLimit: 10, to: peer) { (delivery, postgres, _) async throws in
            for event in [typed, broken] {
                let row = AuditOutboxRow(service: "consent", event: event)
                try await postgres.withConnection { try await row.insert(on: $0, logger: testLogger) }
            }
            #expect(try await delivery.deliverBatch() == 2)
        }
        let sent = await peer.events
        try #require(sent.count == 2)
        #expect(sent[0]["outcomeDesc"] == .string("a?b?c\td") && AuditEventElements.issues(sent[0]).isEmpty)
        let standIn = sent[1]
        #expect(AuditEventElements.issues(standIn).isEmpty, "\(AuditEventElements.issues(standIn))")
        #expect(standIn["type"]?["code"] == .string("110100") && standIn["outcome"] == .string("4"))
        let entities = standIn["entity"]?.arrayValue ?? []
        #expect(entities.first?["what"]?["reference"] == .string("Patient/p2"), "the patient stays in their view")
        let original = try #require(entities.last?["detail"]?.arrayValue?.first?["valueBase64Binary"]?.stringValue.flatMap { Base64.decode($0) })
        #expect(try JSONParser.parse(original) == broken, "the original is kept whole")
    }

    @Test func aRequestStaysUnderTheByteLimit() async throws {
        let peer = AuditEventsPeer()
        // 1.5 MiB each: two fit in 4 MiB, three do not.
        try await Self.delivering("deliverybytes", rows: 5, padding: 3 << 19, batchLimit: 10, to: peer) { (delivery, postgres, keys) async throws in
            while try await delivery.deliverBatch() > 0 {}
            #expect(await peer.requests == [Array(keys[0..<2]), Array(keys[2..<4]), [keys[4]]])
        }
    }

    @Test func aRefusedOrUnansweredBatchStaysAndIsRetriedWithTheSameKeys() async throws {
        let peer = AuditEventsPeer()
        try await Self.delivering("deliveryretry", rows: 2, batchLimit: 10, to: peer) { (delivery, postgres, keys) async throws in
            await peer.fail(.serviceUnavailable, .badRequest)
            await #expect(throws: ServiceClient.CallError.self) { try await delivery.deliverBatch() }
            // A 4xx will not pass by itself: it says so, and nothing is dropped.
            let refused = await #expect(throws: AuditDelivery.Refused.self) { try await delivery.deliverBatch() }
            #expect(refused?.description.contains("400") == true, "\(String(describing: refused))")
            #expect(try await Self.remainingKeys(postgres) == keys)
            // Audit stored both but its answer lacks one: delivery cannot tell, so both stay.
            await peer.leaveUnanswered(keys[1])
            await #expect(throws: AuditDelivery.Refused.self) { try await delivery.deliverBatch() }
            #expect(try await Self.remainingKeys(postgres) == keys)
            await peer.leaveUnanswered(nil)
            #expect(try await delivery.deliverBatch() == 2)
            #expect(try await Self.remainingKeys(postgres).isEmpty)
            #expect(await peer.requests == Array(repeating: keys, count: 4))
        }
        #expect(await peer.events.count == 2, "the retried keys are stored once")
    }

    @Test func aCommitThatFailsAfterTheDeliveryResendsTheSameKeys() async throws {
        let peer = AuditEventsPeer()
        try await Self.delivering("deliverycommit", rows: 3, batchLimit: 10, to: peer) { delivery, postgres, keys in
            // The removal fails once: audit has the events, the outbox still has the rows.
            for statement in [
                "CREATE TABLE fail_once (armed boolean NOT NULL)", "INSERT INTO fail_once VALUES (true)",
                """
                CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF (SELECT armed FROM fail_once) THEN RAISE EXCEPTION 'the commit fails'; END IF;
                    RETURN OLD;
                END $$
                """,
                "CREATE TRIGGER fail_once BEFORE DELETE ON audit_outbox FOR EACH ROW EXECUTE FUNCTION fail_once()",
            ] as [PostgresQuery] {
                try await postgres.query(statement, logger: testLogger)
            }
            await #expect(throws: (any Error).self) { try await delivery.deliverBatch() }
            #expect(try await Self.remainingKeys(postgres) == keys)
            try await postgres.query("UPDATE fail_once SET armed = false", logger: testLogger)
            #expect(try await delivery.deliverBatch() == 3)
            #expect(try await Self.remainingKeys(postgres).isEmpty)
            #expect(await peer.requests == [keys, keys])
        }
        #expect(await peer.events.count == 3)
    }

    @Test func concurrentWorkersShareTheOutboxWithoutDuplicates() async throws {
        let (url, keys) = try await Self.outbox("deliveryshare", rows: 120)
        let peer = AuditEventsPeer()
        await peer.slow(.milliseconds(20))
        let delivered = try await peer.serve { base in
            try await withPostgres(url) { postgres in
                // Two processes' workers, each with its own pool, on one outbox.
                try await withPostgres(url) { other in
                    try await withThrowingTaskGroup(of: Int.self) { group in
                        for pool in [postgres, other] {
                            let delivery = Self.delivery(pool, peer: base, batchLimit: 10)
                            group.addTask {
                                var total = 0
                                while true {
                                    let count = try await delivery.deliverBatch()
                                    if count == 0 { return total }
                                    total += count
                                }
                            }
                        }
                        var totals: [Int] = []
                        for try await total in group { totals.append(total) }
                        #expect(try await Self.remainingKeys(postgres).isEmpty)
                        return totals
                    }
                }
            }
        }
        #expect(delivered.reduce(0, +) == 120)
        #expect(delivered.allSatisfy { $0 > 0 }, "both workers delivered: \(delivered)")
        let sent = await peer.requests.flatMap { $0 }
        #expect(sent.count == 120 && Set(sent) == Set(keys), "every row was sent exactly once")
        // Each batch is in outbox order.
        let position = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) })
        #expect(await peer.requests.allSatisfy { batch in batch.map { position[$0]! } == batch.map { position[$0]! }.sorted() })
    }

    @Test func consentDeliversItsEventsOnceTheyCommit() async throws {
        let fixture = try await ConsentFixture.make("deliveryconsent")
        let peer = AuditEventsPeer()
        try await peer.serve { base in
            // The peer issues consent's own token; callers' tokens still come from the test issuer.
            let variables = [
                "OAUTH_CLIENT_ID": "consent", "OAUTH_CLIENT_SECRET": "secret", "IDENTITY_URL": base.absoluteString,
                "IDENTITY_ISSUER": TestTokens.issuer, "AUDIT_URL": base.absoluteString,
            ]
            try await fixture.app(variables).test(.router) { client in
                let id = try await client.createConsent(try Sample.consent(), token: try await fixture.patient())
                let deadline = ContinuousClock.now + .seconds(20)
                while await peer.events.isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
                let events = await peer.events
                #expect(events.count == 1)
                #expect(events.first?["entity"]?.arrayValue?.first?["what"]?["reference"] == .string("Consent/\(id)/_history/1"))
                // The row goes in the delivery's transaction, which commits just after audit answered.
                while try await !fixture.auditEvents().isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
                #expect(try await fixture.auditEvents().isEmpty, "the outbox is empty once audit has the event")
            }
        }
    }
}
