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

/// What ends up in the database: sealed bodies only, append-only versions, audit rows.
@Suite struct StorageTests {
    @Test func reportTextNeverReachesTheDatabaseInPlaintext() async throws {
        let fixture = try await RecordsFixture.make("plaintext")
        let marker = "MARKER-\(UUID().uuidString)"
        try await fixture.app().test(.router) { client in
            let reception = try await fixture.token(.receptionist)
            let patient = try await client.create("Patient", Sample.patient("Plain"), token: reception)
            let tech = try await fixture.token(.technologist, fhirUser: "Practitioner/t")
            _ = try await client.create("DiagnosticReport", Sample.report(patient: patient, conclusion: marker), token: tech)
            let raw = try await client.fhir(
                .post, "/fhir/Binary", token: tech, body: "scan \(marker) scan",
                headers: [.contentType: "text/plain", HTTPField.Name("X-Security-Context")!: "Patient/\(patient)"])
            #expect(raw.status == .created)
        }
        let hexMarker = Array(marker.utf8).hexString
        let hits = try await fixture.withDatabase { postgres in
            var tables: [String] = []
            for try await name in try await postgres.query(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'", logger: Logger(label: "test")
            ).decode(String.self) {
                tables.append(name)
            }
            var hits: [String] = []
            for table in tables {
                // The table name comes from pg_tables itself.
                let rows = try await postgres.query(PostgresQuery(unsafeSQL: "SELECT t::text FROM \(table) t"), logger: Logger(label: "test"))
                for try await text in rows.decode(String.self) where text.contains(marker) || text.lowercased().contains(hexMarker) {
                    hits.append(table)
                }
            }
            return (tables.count, hits)
        }
        #expect(hits.0 >= 8)
        #expect(hits.1.isEmpty, "the marker is readable in \(hits.1)")
    }

    @Test func versionsAreAppendOnlyAndEveryAccessIsAudited() async throws {
        let fixture = try await RecordsFixture.make("appendonly")
        try await fixture.app().test(.router) { client in
            let reception = try await fixture.token(.receptionist)
            let id = try await client.create("Patient", Sample.patient("Audit"), token: reception)
            _ = try await client.fhir(.get, "/fhir/Patient/\(id)", token: reception)
            _ = try await client.fhir(.get, "/fhir/Patient?family=audit", token: reception)
            _ = try await client.fhir(.get, "/fhir/Patient/nope", token: reception)
        }
        let (events, refused) = try await fixture.withDatabase { postgres -> ([String], Bool) in
            var events: [String] = []
            for try await event in try await postgres.query("SELECT event FROM audit_outbox ORDER BY id", logger: Logger(label: "test")).decode(String.self) {
                events.append(event)
            }
            var refused = false
            do {
                try await postgres.query("UPDATE resource_versions SET deleted = true", logger: Logger(label: "test"))
            } catch {
                refused = true
            }
            return (events, refused)
        }
        #expect(refused)
        let subtypes = events.compactMap { try? JSONParser.parse($0)["subtype"]?.arrayValue?.first?["code"]?.stringValue }
        #expect(subtypes == ["create", "read", "search-type", "read"])
        #expect(events.last?.contains(#""outcome":"4""#) == true)
        #expect(events[2].contains(Array("family=audit".utf8).base64String))
    }

    @Test func rotatingTheKEKKeepsEverythingReadable() async throws {
        let fixture = try await RecordsFixture.make("rotation")
        let patient = try await fixture.app().test(.router) { client in
            try await client.create("Patient", Sample.patient("Rotate"), token: try await fixture.token(.receptionist))
        }
        let newKEK = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let both = fixture.variables.merging(["RECORDS_KEKS": "k1:\(fixture.kek),k2:\(newKEK)", "RECORDS_ACTIVE_KEK": "k2"]) { $1 }
        let (count, kek) = try await rotateKeyEncryptionKey(reader: testConfig(both))
        #expect(count == 1 && kek == "k2")
        #expect(try await rotateKeyEncryptionKey(reader: testConfig(both)).count == 0)
        // After rotation the old KEK is no longer needed.
        try await fixture.app(["RECORDS_KEKS": "k2:\(newKEK)"]).test(.router) { client in
            let read = try await client.fhir(.get, "/fhir/Patient/\(patient)", token: try await fixture.token(.receptionist))
            #expect(read.status == .ok)
        }
    }
}
