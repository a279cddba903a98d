import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import TestSupport
import Testing

@Suite struct ReadTests {
    @Test func readServesTheStoredEvent() async throws {
        let fixture = try await AuditFixture.make("read")
        try await fixture.app().test(.router) { client in
            let event = AuditSample.rest(
                "read", action: "R", agent: "Practitioner/d1", entity: "DiagnosticReport/r1/_history/1", patient: "Patient/p1",
                recorded: "2026-05-02T10:00:00.123Z")
            let ids = try await fixture.ingest([event], client: client)
            let admin = try await fixture.admin()

            let read = try await client.send(.get, "/fhir/AuditEvent/\(ids[0])", token: admin)
            #expect(read.status == .ok && read.contentType?.hasPrefix("application/fhir+json") == true)
            let stored = try #require(read.json)
            #expect(stored["resourceType"]?.stringValue == "AuditEvent" && stored["id"]?.stringValue == ids[0])
            #expect(stored["meta"]?["lastUpdated"]?.stringValue != nil)
            // Stored as RFC 8785 text: the same elements, members in canonical order.
            for element in ["recorded", "type", "subtype", "agent", "entity", "source"] {
                #expect(try stored[element]?.canonicalized() == event[element]?.canonicalized(), "\(element)")
            }
            // What search returns is byte for byte what read serves.
            let search = try await client.send(.get, "/fhir/AuditEvent?_id=\(ids[0])", token: admin)
            let entry = try #require(search.json?["entry"]?.arrayValue?.first?["resource"])
            #expect(entry.serializedString == read.text)

            for missing in ["999", "0", "-1", "abc", "1.5", "99999999999999999999", "0\(ids[0])", "+\(ids[0])"] {
                let answer = try await client.send(.get, "/fhir/AuditEvent/\(missing)", token: admin)
                #expect(answer.status == .notFound && answer.json?["resourceType"]?.stringValue == "OperationOutcome", "\(missing): \(answer.status)")
            }
            #expect(try await client.send(.get, "/fhir/AuditEvent/\(ids[0])?_format=xml", token: admin).status == .notAcceptable)
            // Events arrive through POST /events only: no FHIR writes.
            for (method, path) in [
                (HTTPRequest.Method.post, "/fhir/AuditEvent"), (.put, "/fhir/AuditEvent/\(ids[0])"), (.delete, "/fhir/AuditEvent/\(ids[0])"),
            ] {
                let answer = try await client.send(method, path, token: admin, body: event.serializedString)
                #expect(answer.status == .methodNotAllowed && answer.json?["resourceType"]?.stringValue == "OperationOutcome", "\(method) \(path)")
            }
        }
    }

    @Test func metadataDescribesTheSearch() async throws {
        let fixture = try await AuditFixture.make("metadata")
        try await fixture.app().test(.router) { client in
            let metadata = try await client.send(.get, "/fhir/metadata", token: nil)
            #expect(metadata.status == .ok && metadata.contentType?.hasPrefix("application/fhir+json") == true)
            let capability = try #require(metadata.json)
            #expect(capability["resourceType"]?.stringValue == "CapabilityStatement" && capability["fhirVersion"]?.stringValue == "4.0.1")
            #expect(capability["implementation"]?["url"]?.stringValue == AuditFixture.base)
            #expect(capability["software"]?["name"]?.stringValue == "medledger-audit")
            let rest = try #require(capability["rest"]?.arrayValue?.first)
            #expect(rest["security"]?["service"]?.arrayValue?.first?["coding"]?.arrayValue?.first?["code"]?.stringValue == "SMART-on-FHIR")
            let resources = rest["resource"]?.arrayValue ?? []
            #expect(resources.count == 1)
            let auditEvent = try #require(resources.first)
            #expect(auditEvent["type"]?.stringValue == "AuditEvent" && auditEvent["versioning"]?.stringValue == "no-version")
            let interactions = Set(auditEvent["interaction"]?.arrayValue?.compactMap { $0["code"]?.stringValue } ?? [])
            #expect(interactions == ["read", "search-type"])
            let parameters = auditEvent["searchParam"]?.arrayValue?.compactMap { p in
                p["name"]?.stringValue.map { "\($0):\(p["type"]?.stringValue ?? "")" }
            }
            #expect(
                Set(parameters ?? []) == [
                    "_id:token", "patient:reference", "agent:reference", "entity:reference", "type:token", "subtype:token", "action:token",
                    "outcome:token", "date:date",
                ])
            #expect(try await client.send(.get, "/fhir/metadata?_format=xml", token: nil).status == .notAcceptable)
            #expect(try await client.send(.post, "/fhir/metadata", token: nil).status == .methodNotAllowed)
        }
    }
}
