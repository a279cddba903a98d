import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import PostgresNIO
import TestSupport
import Testing

@Suite struct InteractionTests {
    @Test func createReadVreadUpdateDeleteAndHistory() async throws {
        let fixture = try await ConsentFixture.make("crud")
        try await fixture.app().test(.router) { client in
            let patient = try await fixture.patient()
            let created = try await client.send(.post, "/fhir/Consent", token: patient, body: try Sample.consent().serializedString)
            #expect(created.status == .created)
            let id = try #require(created.id)
            #expect(id == id.lowercased() && UUID(uuidString: id) != nil)
            #expect(created.headers[.eTag] == "W/\"1\"")
            #expect(created.headers[.location] == "\(ConsentFixture.base)/Consent/\(id)/_history/1")
            #expect(created.headers[.lastModified] != nil)
            #expect(created.contentType?.hasPrefix("application/fhir+json") == true)
            #expect(created.json?["meta"]?["versionId"]?.stringValue == "1")
            #expect(created.json?["meta"]?["lastUpdated"]?.stringValue != nil)

            let read = try await client.send(.get, "/fhir/Consent/\(id)", token: patient)
            #expect(read.status == .ok && read.text == created.text && read.headers[.eTag] == "W/\"1\"")

            let revoked = try #require(created.json).setting(["status"], .string("inactive"))
            let update = try await client.send(
                .put, "/fhir/Consent/\(id)", token: patient, body: revoked.serializedString, headers: [.ifMatch: "W/\"1\""])
            #expect(update.status == .ok && update.headers[.eTag] == "W/\"2\"")
            #expect(update.headers[.location] == "\(ConsentFixture.base)/Consent/\(id)/_history/2")
            #expect(update.json?["status"]?.stringValue == "inactive")
            let stale = try await client.send(
                .put, "/fhir/Consent/\(id)", token: patient, body: revoked.serializedString, headers: [.ifMatch: "W/\"1\""])
            #expect(stale.status == .preconditionFailed && stale.json?["resourceType"]?.stringValue == "OperationOutcome")

            let first = try await client.send(.get, "/fhir/Consent/\(id)/_history/1", token: patient)
            #expect(first.json?["status"]?.stringValue == "active" && first.headers[.eTag] == "W/\"1\"")
            #expect(try await client.send(.get, "/fhir/Consent/\(id)/_history/9", token: patient).status == .notFound)
            #expect(try await client.send(.get, "/fhir/Consent/\(id)/_history/x", token: patient).status == .notFound)

            let minimal = try await client.send(
                .put, "/fhir/Consent/\(id)", token: patient, body: revoked.serializedString, headers: [HTTPField.Name("Prefer")!: "return=minimal"])
            #expect(minimal.status == .ok && minimal.text.isEmpty && minimal.headers[.eTag] == "W/\"3\"")

            #expect(
                try await client.send(.delete, "/fhir/Consent/\(id)", token: patient, headers: [.ifMatch: "W/\"2\""]).status == .preconditionFailed)
            let deleted = try await client.send(.delete, "/fhir/Consent/\(id)", token: patient)
            #expect(deleted.status == .noContent && deleted.headers[.eTag] == "W/\"4\"")
            #expect(try await client.send(.get, "/fhir/Consent/\(id)", token: patient).status == .gone)
            #expect(try await client.send(.delete, "/fhir/Consent/\(id)", token: patient).status == .noContent)
            #expect(try await client.send(.put, "/fhir/Consent/\(id)", token: patient, body: revoked.serializedString).status == .gone)
            #expect(try await client.send(.get, "/fhir/Consent/\(id)/_history/1", token: patient).status == .ok)
            #expect(try await client.send(.get, "/fhir/Consent/\(id)/_history/4", token: patient).status == .gone)

            let history = try await client.send(.get, "/fhir/Consent/\(id)/_history", token: patient)
            #expect(history.json?["type"]?.stringValue == "history")
            let entries = history.json?["entry"]?.arrayValue ?? []
            #expect(entries.compactMap { $0["request"]?["method"]?.stringValue } == ["DELETE", "PUT", "PUT", "POST"])
            #expect(entries.compactMap { $0["response"]?["etag"]?.stringValue } == ["W/\"4\"", "W/\"3\"", "W/\"2\"", "W/\"1\""])
            #expect(entries.first?["resource"] == nil && entries.last?["resource"]?["status"]?.stringValue == "active")
            #expect(try await client.send(.get, "/fhir/Consent?_id=\(id)", token: patient).total == 0)
        }
    }

    @Test func storedVersionsAreAppendOnly() async throws {
        let fixture = try await ConsentFixture.make("append-only")
        try await fixture.app().test(.router) { client in
            let created = try await client.send(.post, "/fhir/Consent", token: try await fixture.patient(), body: try Sample.consent().serializedString)
            #expect(created.status == .created)
        }
        for statement: PostgresQuery in ["UPDATE consent_versions SET deleted = true", "DELETE FROM consent_versions", "TRUNCATE consent_versions"] {
            await #expect(throws: (any Error).self, "\(statement.sql)") { try await fixture.execute(statement) }
        }
        try await fixture.execute("INSERT INTO consent_versions (id, version, last_updated, deleted, body, recorded_by) VALUES ('x', 1, 0, false, '{}', 'test')")
    }

    @Test func historyPagesNewestFirst() async throws {
        let fixture = try await ConsentFixture.make("historypages")
        try await fixture.app().test(.router) { client in
            let patient = try await fixture.patient()
            let id = try await client.createConsent(try Sample.consent(), token: patient)
            let body = try Sample.consent(status: "inactive").setting(["id"], .string(id))
            for _ in 0..<3 { #expect(try await client.send(.put, "/fhir/Consent/\(id)", token: patient, body: body.serializedString).status == .ok) }
            let first = try await client.send(.get, "/fhir/Consent/\(id)/_history?_count=3", token: patient)
            #expect(first.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["meta"]?["versionId"]?.stringValue } == ["4", "3", "2"])
            let next = try #require(first.link("next"))
            let path = String(next.dropFirst(ConsentFixture.base.count - "/fhir".count))
            let second = try await client.send(.get, path, token: patient)
            #expect(second.json?["entry"]?.arrayValue?.compactMap { $0["resource"]?["meta"]?["versionId"]?.stringValue } == ["1"])
            #expect(second.link("next") == nil)
            #expect(try await client.send(.get, "/fhir/Consent/\(id)/_history?_cursor=bogus", token: patient).status == .badRequest)
            #expect(try await client.send(.get, "/fhir/Consent/\(id)/_history?_count=x", token: patient).status == .badRequest)
        }
    }

    @Test func receptionistRecordsOnThePatientsBehalf() async throws {
        let fixture = try await ConsentFixture.make("behalf")
        try await fixture.app().test(.router) { client in
            let reception = try await fixture.receptionist()
            // A recorded-by sent by the client is replaced by the server's own.
            let forged = try Sample.consent().setting(
                ["extension"],
                .array([
                    try JSONParser.parse(
                        #"{"url":"https://medledger.dev/fhir/StructureDefinition/recorded-by","valueReference":{"display":"someone else"}}"#)
                ]))
            let created = try await client.send(.post, "/fhir/Consent", token: reception, body: forged.serializedString)
            #expect(created.status == .created)
            let id = try #require(created.id)
            let extensions = created.json?["extension"]?.arrayValue ?? []
            #expect(extensions.count == 1)
            #expect(extensions.first?["url"]?.stringValue == "https://medledger.dev/fhir/StructureDefinition/recorded-by")
            let display = try #require(extensions.first?["valueReference"]?["display"]?.stringValue)
            #expect(display.hasPrefix("user/") && display != "someone else")
            let recordedBy = try await withPostgres(fixture.databaseURL) { client in
                try await client.query("SELECT recorded_by FROM consents WHERE id = \(id)", logger: testLogger).collect().first?.decode(String.self)
            }
            #expect(recordedBy == display)

            // The patient sees it as theirs and may revoke it; their own version carries no recorded-by.
            let patient = try await fixture.patient()
            #expect(try await client.send(.get, "/fhir/Consent/\(id)", token: patient).status == .ok)
            let revoked = try #require(created.json).setting(["status"], .string("inactive"))
            let update = try await client.send(.put, "/fhir/Consent/\(id)", token: patient, body: revoked.serializedString)
            #expect(update.status == .ok && update.json?["extension"] == nil)

            // A receptionist with a Practitioner identity is named by reference; the audit event names both.
            let named = try await fixture.token(.receptionist, fhirUser: "Practitioner/r9")
            let second = try await client.send(.post, "/fhir/Consent", token: named, body: try Sample.consent(patient: "Patient/p2").serializedString)
            #expect(second.json?["extension"]?.arrayValue?.first?["valueReference"]?["reference"]?.stringValue == "Practitioner/r9")
            let event = try #require(try await fixture.auditEvents().last)
            let who = (event["agent"]?.arrayValue ?? []).compactMap { $0["who"]?["reference"]?.stringValue }
            #expect(who == ["Practitioner/r9", "Patient/p2"])

            // A patient that does not exist cannot be given a consent.
            let unknown = try await client.send(
                .post, "/fhir/Consent", token: reception, body: try Sample.consent(patient: "Patient/nobody").serializedString)
            #expect(unknown.status == .unprocessableContent)
            #expect(unknown.issue?.diagnostics == "patient Patient/nobody does not exist" && unknown.issue?.expression == "Consent.patient")
        }
    }

    @Test func everyChangeIsAuditedInTheOutbox() async throws {
        let fixture = try await ConsentFixture.make("audit")
        try await fixture.app().test(.router) { client in
            let patient = try await fixture.patient()
            let id = try await client.createConsent(try Sample.consent(), token: patient)
            let body = try Sample.consent(status: "inactive").setting(["id"], .string(id))
            #expect(try await client.send(.put, "/fhir/Consent/\(id)", token: patient, body: body.serializedString).status == .ok)
            #expect(try await client.send(.delete, "/fhir/Consent/\(id)", token: patient).status == .noContent)
            // Reads, refusals and a repeated delete change nothing and write no row.
            #expect(try await client.send(.get, "/fhir/Consent/\(id)/_history", token: patient).status == .ok)
            #expect(try await client.send(.delete, "/fhir/Consent/\(id)", token: patient).status == .noContent)
            #expect(
                try await client.send(.post, "/fhir/Consent", token: patient, body: try Sample.consent(patient: "Patient/p2").serializedString).status
                    == .forbidden)

            let events = try await fixture.auditEvents()
            #expect(events.count == 3)
            #expect(events.compactMap { $0["action"]?.stringValue } == ["C", "U", "D"])
            #expect(events.compactMap { $0["subtype"]?.arrayValue?.first?["code"]?.stringValue } == ["create", "update", "delete"])
            #expect(events.allSatisfy { $0["type"]?["code"]?.stringValue == "rest" })
            let entities = events.map { event in (event["entity"]?.arrayValue ?? []).compactMap { $0["what"]?["reference"]?.stringValue } }
            #expect(entities == [1, 2, 3].map { ["Consent/\(id)/_history/\($0)", "Patient/p1"] })
            // The patient acted for themselves: one agent.
            #expect(
                events.allSatisfy {
                    $0["agent"]?.arrayValue?.count == 1 && $0["agent"]?.arrayValue?.first?["who"]?["reference"]?.stringValue == "Patient/p1"
                })
        }
    }
}
