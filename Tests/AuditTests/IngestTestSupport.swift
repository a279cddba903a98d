import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import PostgresNIO
import TestSupport

/// An AuditEvent as records sends one: a doctor reading a report of `patient` (none: an event
/// about no patient, e.g. a login).
func sampleEvent(_ n: Int, patient: String? = "p1", recorded: String = "2025-11-21T10:00:00.000Z") -> String {
    let entities =
        patient.map {
            #","entity":[{"what":{"reference":"DiagnosticReport/r\#(n)/_history/1"}},{"what":{"reference":"Patient/\#($0)"},"role":{"system":"http://terminology.hl7.org/CodeSystem/object-role","code":"1"}}]"#
        } ?? ""
    return #"""
        {"resourceType":"AuditEvent","type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"},"subtype":[{"system":"http://hl7.org/fhir/restful-interaction","code":"read"}],"action":"R","recorded":"\#(recorded)","outcome":"0","agent":[{"who":{"reference":"Practitioner/d1","identifier":{"system":"urn:medledger:identity:user","value":"u\#(n)"}},"requestor":true,"network":{"address":"10.0.0.\#(n % 250)","type":"2"}}],"source":{"site":"medledger-records","observer":{"display":"medledger-records"}}\#(entities)}
        """#
}

/// One stored row of the chain.
struct StoredEvent {
    var seq: Int64
    var key: String
    var text: String
    var hash: [UInt8]
}

extension AuditFixture {
    /// The chain as stored, in seq order.
    func storedEvents() async throws -> [StoredEvent] {
        try await withPostgres(databaseURL) { client in
            var rows: [StoredEvent] = []
            let query: PostgresQuery = "SELECT seq, idempotency_key, event, hash FROM audit_events ORDER BY seq"
            for try await (seq, key, text, hash) in try await client.query(query, logger: testLogger).decode((Int64, String, String, ByteBuffer).self)
            {
                rows.append(StoredEvent(seq: seq, key: key, text: text, hash: Array(hash.readableBytesView)))
            }
            return rows
        }
    }

    /// A number from one SQL query (`count(*)` and the like).
    func count(_ query: PostgresQuery) async throws -> Int64 {
        try await withPostgres(databaseURL) { client in
            for try await value in try await client.query(query, logger: testLogger).decode(Int64.self) { return value }
            return -1
        }
    }
}

extension TestClientProtocol {
    /// `POST /events` with `items` as (idempotency key, AuditEvent JSON text).
    func postEvents(_ items: [(key: String, event: String)], token: String?) async throws -> Answer {
        let list = items.map { #"{"idempotencyKey":\#(JSONValue.string($0.key).serializedString),"event":\#($0.event)}"# }.joined(separator: ",")
        return try await send(.post, "/events", token: token, body: #"{"events":[\#(list)]}"#)
    }
}

extension Answer {
    /// The ids `POST /events` answered, in order.
    var eventIDs: [String] { (json?["events"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue } }
    /// Which answered events were duplicates.
    var duplicates: [Bool] { (json?["events"]?.arrayValue ?? []).map { $0["duplicate"] == .bool(true) } }
}
