import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import TestSupport
import Testing

@Suite struct AccessTests {
    @Test func rolesSeeAndWriteWhatTheyMay() async throws {
        let fixture = try await ConsentFixture.make("access")
        try await fixture.app().test(.router) { client in
            let p1 = try await fixture.patient("p1")
            let p2 = try await fixture.patient("p2")
            let reception = try await fixture.receptionist()
            // p1: d1 all, o1 category; p2 (by a receptionist): d1 one report, d2 all.
            let d1ForP1 = try await client.createConsent(try Sample.consent(), token: p1)
            let o1ForP1 = try await client.createConsent(try Sample.consent(actor: "Organization/o1", category: "LAB"), token: p1)
            let d1ForP2 = try await client.createConsent(try Sample.consent(patient: "Patient/p2", report: "DiagnosticReport/r2"), token: reception)
            let d2ForP2 = try await client.createConsent(try Sample.consent(patient: "Patient/p2", actor: "Practitioner/d2"), token: p2)

            // A patient grants access to their own records only.
            let other = try await client.send(.post, "/fhir/Consent", token: p1, body: try Sample.consent(patient: "Patient/p2").serializedString)
            #expect(other.status == .forbidden && other.issue?.diagnostics.contains("a patient grants access to their own records only") == true)
            let moved = try Sample.consent(patient: "Patient/p2").setting(["id"], .string(d1ForP1))
            #expect(try await client.send(.put, "/fhir/Consent/\(d1ForP1)", token: p1, body: moved.serializedString).status == .forbidden)

            func ids(_ token: String, _ query: String = "") async throws -> (Set<String>, Int?) {
                let answer = try await client.send(.get, "/fhir/Consent\(query)", token: token)
                #expect(answer.status == .ok, "\(answer.text)")
                return (Set(answer.ids), answer.total)
            }
            #expect(try await ids(p1) == ([d1ForP1, o1ForP1], 2))
            #expect(try await ids(p2) == ([d1ForP2, d2ForP2], 2))
            #expect(try await ids(reception) == ([d1ForP1, o1ForP1, d1ForP2, d2ForP2], 4))
            #expect(try await ids(try await fixture.doctor("d1")) == ([d1ForP1, d1ForP2], 2))
            #expect(try await ids(try await fixture.doctor("d2")) == ([d2ForP2], 1))
            #expect(try await ids(try await fixture.ehr("o1")) == ([o1ForP1], 1))
            // Filters never widen access: p1 asking for p2's consents gets none.
            #expect(try await ids(p1, "?patient=Patient/p2") == ([], 0))

            // Reads of consents one may not see are 404, never 403.
            let d2 = try await fixture.doctor("d2")
            for path in ["/fhir/Consent/\(d1ForP1)", "/fhir/Consent/\(d1ForP1)/_history/1", "/fhir/Consent/\(d1ForP1)/_history"] {
                #expect(try await client.send(.get, path, token: p2).status == .notFound, "\(path)")
                #expect(try await client.send(.get, path, token: d2).status == .notFound, "\(path)")
                #expect(try await client.send(.get, path, token: try await fixture.ehr("o9")).status == .notFound, "\(path)")
                #expect(try await client.send(.get, path, token: try await fixture.token(.admin)).status == .notFound, "\(path)")
                #expect(try await client.send(.get, path, token: try await fixture.token(.technologist)).status == .notFound, "\(path)")
                #expect(try await client.send(.get, path, token: try await fixture.doctor("d1")).status == .ok, "\(path)")
            }
            let body = try Sample.consent(status: "inactive").setting(["id"], .string(d1ForP1))
            #expect(try await client.send(.put, "/fhir/Consent/\(d1ForP1)", token: p2, body: body.serializedString).status == .notFound)
            #expect(try await client.send(.delete, "/fhir/Consent/\(d1ForP1)", token: p2).status == .notFound)
            #expect(try await client.send(.delete, "/fhir/Consent/\(d1ForP1)", token: try await fixture.token(.admin)).status == .notFound)

            // Doctors and EHR systems read only; admins, technologists and services do nothing.
            let d1 = try await fixture.doctor("d1")
            #expect(try await client.send(.put, "/fhir/Consent/\(d1ForP1)", token: d1, body: body.serializedString).status == .forbidden)
            #expect(try await client.send(.delete, "/fhir/Consent/\(d1ForP1)", token: d1).status == .forbidden)
            for token in [
                d1, try await fixture.ehr(), try await fixture.token(.admin), try await fixture.token(.technologist), try await fixture.records(),
            ] {
                #expect(try await client.send(.post, "/fhir/Consent", token: token, body: try Sample.consent().serializedString).status == .forbidden)
            }
            for token in [try await fixture.token(.admin), try await fixture.token(.technologist), try await fixture.records()] {
                let search = try await client.send(.get, "/fhir/Consent", token: token)
                #expect(search.status == .forbidden && search.json?["resourceType"]?.stringValue == "OperationOutcome")
            }
            // A receptionist may write any patient's consents.
            #expect(try await client.send(.put, "/fhir/Consent/\(d1ForP1)", token: reception, body: body.serializedString).status == .ok)
            #expect(try await client.send(.delete, "/fhir/Consent/\(d2ForP2)", token: reception).status == .noContent)
        }
    }
}
