import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MedLedgerCore
import PostgresNIO
import Records
import TestSupport
import Testing

/// What every write stores for the ledger (without a ledger: the entries stay pending), and
/// `$verify` of a pending version.
@Suite struct AnchoringTests {
    @Test func everyVersionGetsOneOutboxEntryWithItsCommitment() async throws {
        let fixture = try await RecordsFixture.make("anchoring")
        let (report, pending, served) = try await fixture.app().test(.router) { client in
            let reception = try await fixture.token(.receptionist)
            let patient = try await client.create("Patient", Sample.patient("Anchor"), token: reception)
            let tech = try await fixture.token(.technologist, fhirUser: "Practitioner/t")
            let report = try await client.create("DiagnosticReport", Sample.report(patient: patient, extra: #","extension":[{"url":"urn:x","valueDecimal":1.50}]"#), token: tech)
            let raw = try await client.fhir(
                .post, "/fhir/Binary", token: tech, body: "scan",
                headers: [.contentType: "text/plain", HTTPField.Name("X-Security-Context")!: "Patient/\(patient)"])
            #expect(raw.status == .created)
            #expect(try await client.fhir(.delete, "/fhir/Patient/\(patient)", token: reception).status == .noContent)

            let answer = try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)/_history/1/$verify", token: tech)
            #expect(answer.status == .ok, "\(answer.text)")
            var pending: [String: JSONValue] = [:]
            for parameter in answer.json?["parameter"]?.arrayValue ?? [] {
                pending[parameter["name"]!.stringValue!] = parameter
            }
            let served = try #require(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)/_history/1", token: tech).json)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)/$verify", token: nil).status == .unauthorized)
            return (report, pending, served)
        }
        #expect(pending["result"]?["valueCode"] == .string("pending"))
        #expect(pending["commitmentMatchesStored"]?["valueBoolean"] == .bool(true))
        #expect(pending["searchColumnsMatch"]?["valueBoolean"] == .bool(true))
        #expect(pending["leafIndex"] == nil && pending["tlogProof"] == nil && pending["issue"] == nil)
        // The commitment covers the served JSON in RFC 8785 form (1.50 as the double 1.5).
        let salt = try #require(pending["salt"]?["valueBase64Binary"]?.stringValue.flatMap { Base64.decode($0) })
        let canonical = try served.canonicalized()
        #expect(String(decoding: canonical, as: UTF8.self).contains(#""valueDecimal":1.5}"#))
        #expect(pending["commitment"]?["valueBase64Binary"] == .string(LedgerEntry.commitment(salt: salt, canonical: canonical).base64String))
        let entry = LedgerEntry(
            salt: salt, canonical: canonical, versionReference: "DiagnosticReport/\(report)/_history/1", time: served["meta"]!["lastUpdated"]!.stringValue!)
        #expect(pending["entry"]?["valueString"] == .string(String(decoding: entry.canonical, as: UTF8.self)))

        let (versions, outbox, keys) = try await fixture.withDatabase { postgres in
            let rows = try await postgres.query(
                """
                SELECT (SELECT count(*) FROM resource_versions), (SELECT count(*) FROM ledger_outbox WHERE anchored_at IS NULL),
                    (SELECT count(DISTINCT idempotency_key) FROM ledger_outbox)
                """, logger: Logger(label: "test")
            ).collect()
            return try rows[0].decode((Int, Int, Int).self)
        }
        // Patient v1 and its deletion v2, the report, the Binary: one pending entry each.
        #expect(versions == 4 && outbox == 4 && keys == 4)
    }
}
