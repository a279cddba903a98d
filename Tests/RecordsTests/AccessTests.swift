import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MedLedgerCore
import TestSupport
import Testing

/// The role table of the design guide, on every kind of interaction.
@Suite struct AccessTests {
    @Test func rolesSeeTheirCompartmentsOnly() async throws {
        let fixture = try await RecordsFixture.make("access")
        try await fixture.app().test(.router) { client in
            let people = try await People.make(client, fixture)
            let (admin, reception, house, mine, theirs) = (people.admin, people.reception, people.house, people.mine, people.theirs)
            let (tech, doctor, patient) = (people.tech, people.doctor, people.patient)
            let otherTech = try await fixture.token(.technologist, fhirUser: "Practitioner/tech-2")

            // Technologists upload preliminary reports for any patient, never final ones.
            let report = try await client.create("DiagnosticReport", Sample.report(patient: mine), token: tech)
            let other = try await client.create("DiagnosticReport", Sample.report(patient: theirs), token: tech)
            #expect(try await client.fhir(.post, "/fhir/DiagnosticReport", token: tech, body: Sample.report(patient: mine, status: "final")).status == .forbidden)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)", token: otherTech).status == .notFound)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport?_total=accurate", token: tech).total == 2)

            // Receptionists and admins have no report scopes at all: 403.
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)", token: reception).status == .forbidden)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)", token: admin).status == .forbidden)
            #expect(try await client.fhir(.get, "/fhir/Patient/\(mine)", token: admin).status == .forbidden)

            // Doctors see their assigned patients and those patients' reports; others do not exist for them.
            #expect(try await client.fhir(.get, "/fhir/Patient?_total=accurate", token: doctor).entryIDs == [mine])
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)", token: doctor).status == .ok)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/\(other)", token: doctor).status == .notFound)
            #expect(try await client.fhir(.get, "/fhir/Patient/\(theirs)", token: doctor).status == .notFound)
            #expect(try await client.fhir(.post, "/fhir/DiagnosticReport", token: doctor, body: Sample.report(patient: theirs)).status == .unprocessableContent)

            // The patient sees nothing until the doctor approves; approval stamps resultsInterpreter.
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)", token: patient).status == .notFound)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport", token: patient).total == 0)
            let current = try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)", token: doctor)
            let final = (current.json?.objectMembers ?? []).map { $0.key == "status" ? ($0.key, JSONValue.string("final")) : $0 }
            let approved = try await client.fhir(.put, "/fhir/DiagnosticReport/\(report)", token: doctor, body: JSONValue.object(final).serializedString)
            #expect(approved.status == .ok)
            #expect(approved.json?["resultsInterpreter"]?.arrayValue?.first?["reference"]?.stringValue == "Practitioner/\(house)")
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)", token: patient).status == .ok)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)/_history/1", token: patient).status == .notFound)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport", token: patient).entryIDs == [report])
            #expect(try await client.fhir(.get, "/fhir/Patient/\(theirs)", token: patient).status == .notFound)
            // A technologist cannot change it any more.
            #expect(try await client.fhir(.put, "/fhir/DiagnosticReport/\(report)", token: tech, body: approved.text).status == .forbidden)

            // EHR clients: trusted ones see all their scopes allow; untrusted ones need consent (none yet).
            let scope = "system/Patient.rs system/DiagnosticReport.rs"
            let trusted = try await fixture.token(.system, fhirUser: "Organization/ehr", trusted: true, scope: scope)
            let untrusted = try await fixture.token(.system, fhirUser: "Organization/ext", trusted: false, scope: scope)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport", token: trusted).total == 2)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport", token: untrusted).total == 0)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)", token: untrusted).status == .notFound)
            #expect(try await client.fhir(.post, "/fhir/Patient", token: trusted, body: Sample.patient("X")).status == .forbidden)
        }
    }
}
