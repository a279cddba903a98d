import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import TestSupport
import Testing

@Suite struct AccessTests {
    @Test func patientsSeeTheirOwnEventsAdminsEverythingOthersNothing() async throws {
        let fixture = try await AuditFixture.make("access")
        try await fixture.app().test(.router) { client in
            let id = try await SearchTests.trail(fixture, client)
            func names(_ token: String, _ query: String = "") async throws -> Set<String> { try await client.names(query, token: token, trail: id) }
            let p1 = try await fixture.patient("p1")
            let p2 = try await fixture.patient("p2")
            let admin = try await fixture.admin()

            // A patient: who read their reports and when, their own reads included.
            #expect(try await names(p1) == ["read", "upload", "ownRead"])
            #expect(try await names(p1, "?action=R") == ["read", "ownRead"])
            #expect(try await names(p1, "?patient=Patient/p1") == ["read", "upload", "ownRead"])
            // Filters never widen access: another patient's events are simply not there.
            #expect(try await names(p1, "?patient=Patient/p2") == [])
            #expect(try await names(p1, "?patient=p1,p2") == ["read", "upload", "ownRead"])
            #expect(try await names(p1, "?_id=\(id["breakGlass"]!)") == [])
            #expect(try await names(p1, "?agent=Practitioner/d2") == [])
            // Break-glass reads stay visible to the patient, flagged by their purpose of use.
            let breakGlass = try await client.send(.get, "/fhir/AuditEvent", token: p2)
            #expect(Set(breakGlass.ids) == [id["breakGlass"]!, id["failedSearch"]!] && breakGlass.total == 2)
            let flagged = (breakGlass.json?["entry"]?.arrayValue ?? []).compactMap(\.["resource"]).filter { event in
                (event["purposeOfEvent"]?.arrayValue ?? []).contains { $0["coding"]?.arrayValue?.first?["code"]?.stringValue == "BTG" }
            }
            #expect(flagged.map { $0["id"]?.stringValue } == [id["breakGlass"]!])

            // Reading by id: one's own events only; another patient's is a 404, as if it did not exist.
            #expect(try await client.send(.get, "/fhir/AuditEvent/\(id["read"]!)", token: p1).status == .ok)
            #expect(try await client.send(.get, "/fhir/AuditEvent/\(id["breakGlass"]!)", token: p1).status == .notFound)
            #expect(try await client.send(.get, "/fhir/AuditEvent/\(id["login"]!)", token: p1).status == .notFound)
            #expect(try await client.send(.get, "/fhir/AuditEvent/\(id["breakGlass"]!)", token: p2).status == .ok)

            // An admin: everything, logins and account changes included.
            #expect(try await names(admin) == Set(id.keys))
            for (name, event) in id {
                #expect(try await client.send(.get, "/fhir/AuditEvent/\(event)", token: admin).status == .ok, "\(name)")
            }

            // Everyone else: a 403 for searches, a 404 for reads.
            let others = [
                ("doctor", try await fixture.doctor()),
                ("receptionist", try await fixture.token(.receptionist)),
                ("technologist", try await fixture.token(.technologist)),
                ("service", try await fixture.writer()),
                ("EHR system", try await fixture.token(.system, fhirUser: "Organization/o1", scope: "system/*.rs")),
                ("patient without a Patient", try await fixture.token(.patient)),
                ("doctor with an AuditEvent scope", try await fixture.token(.doctor, fhirUser: "Practitioner/d1", scope: "user/AuditEvent.rs")),
            ]
            for (who, token) in others {
                let search = try await client.send(.get, "/fhir/AuditEvent", token: token)
                #expect(search.status == .forbidden && search.json?["resourceType"]?.stringValue == "OperationOutcome", "\(who): \(search.status)")
                let posted = try await client.send(
                    .post, "/fhir/AuditEvent/_search", token: token, body: "", headers: [.contentType: "application/x-www-form-urlencoded"])
                #expect(posted.status == .forbidden, "\(who): \(posted.status)")
                let read = try await client.send(.get, "/fhir/AuditEvent/\(id["read"]!)", token: token)
                #expect(read.status == .notFound && read.json?["resourceType"]?.stringValue == "OperationOutcome", "\(who): \(read.status)")
            }
            // The role alone is not enough: an admin or patient token without the AuditEvent scope.
            for token in [
                try await fixture.token(.admin, scope: Scope.manageUsers),
                try await fixture.token(.patient, fhirUser: "Patient/p1", scope: "patient/Patient.r"),
            ] {
                #expect(try await client.send(.get, "/fhir/AuditEvent", token: token).status == .forbidden)
                #expect(try await client.send(.get, "/fhir/AuditEvent/\(id["read"]!)", token: token).status == .forbidden)
            }
            // No token: 401 with a challenge.
            let anonymous = try await client.send(.get, "/fhir/AuditEvent", token: nil)
            #expect(anonymous.status == .unauthorized && anonymous.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            #expect(try await client.send(.get, "/fhir/AuditEvent/\(id["read"]!)", token: nil).status == .unauthorized)
        }
    }
}
