import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MedLedgerCore
import PostgresNIO
import TestSupport
import Testing

/// What records' AuditEvents tell a patient's audit view: the patients a search or history
/// concerns (one event each), an approval, a `$verify` verdict, a Binary download's patient.
@Suite struct AuditEventTests {
    /// The events written since `after` (an outbox id), with their ids.
    static func events(_ fixture: RecordsFixture, after: Int64 = 0) async throws -> [(id: Int64, event: JSONValue)] {
        try await fixture.withDatabase { postgres in
            var events: [(Int64, JSONValue)] = []
            for try await (id, text) in try await postgres.query(
                "SELECT id, event FROM audit_outbox WHERE id > \(after) ORDER BY id", logger: Logger(label: "test")
            ).decode((Int64, String).self) {
                events.append((id, try JSONParser.parse(text)))
            }
            return events
        }
    }

    static func patients(_ event: JSONValue) -> [String] {
        (event["entity"]?.arrayValue ?? []).filter { $0["role"]?["code"]?.stringValue == "1" }.compactMap { $0["what"]?["reference"]?.stringValue }
    }

    static func subtypes(_ event: JSONValue) -> [String] { (event["subtype"]?.arrayValue ?? []).compactMap { $0["code"]?.stringValue } }

    static func text(_ event: JSONValue) -> String { String(decoding: event.serialized(), as: UTF8.self) }

    /// A doctor's token and the Patients assigned to them (one per family name).
    static func doctorsPatients(_ families: [String], _ fixture: RecordsFixture, _ client: some TestClientProtocol) async throws
        -> (String, [String])
    {
        let house = try await client.create("Practitioner", Sample.practitioner("House"), token: try await fixture.token(.admin))
        let reception = try await fixture.token(.receptionist)
        var patients: [String] = []
        for family in families { patients.append(try await client.create("Patient", Sample.patient(family, gp: house), token: reception)) }
        return (try await fixture.token(.doctor, fhirUser: "Practitioner/\(house)"), patients)
    }

    @Test func searchesAndHistoriesNameEveryPatientTheyConcern() async throws {
        let fixture = try await RecordsFixture.make("auditpatients")
        let (first, second, marks) = try await fixture.app().test(.router) { client in
            let (doctor, patients) = try await Self.doctorsPatients(["First", "Second"], fixture, client)
            let (first, second) = (patients[0], patients[1])
            _ = try await client.create("DiagnosticReport", Sample.report(patient: first), token: doctor)
            _ = try await client.create("DiagnosticReport", Sample.report(patient: second), token: doctor)
            var marks: [Int64] = []
            func mark() async throws -> Int64 { try await Self.events(fixture).last?.id ?? 0 }
            marks.append(try await mark())
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport", token: doctor).entryIDs.count == 2)
            marks.append(try await mark())
            // Pinned to a patient: named even when nothing matches (a probe is a disclosure attempt).
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport?patient=\(second)&status=final", token: doctor).entryIDs.isEmpty)
            marks.append(try await mark())
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/_history", token: doctor).status == .ok)
            marks.append(try await mark())
            #expect(try await client.fhir(.get, "/fhir/Practitioner", token: doctor).status == .ok)
            marks.append(try await mark())
            return (first, second, marks)
        }
        let all = try await Self.events(fixture)
        func between(_ i: Int) -> [JSONValue] { all.filter { $0.id > marks[i] && $0.id <= marks[i + 1] }.map(\.event) }

        let search = between(0)
        #expect(search.count == 2, "one search event per patient found")
        #expect(search.flatMap(Self.patients).sorted() == ["Patient/\(first)", "Patient/\(second)"].sorted())
        // No parameters: no query to record (an empty one would not be valid FHIR).
        #expect(search.allSatisfy { Self.subtypes($0) == ["search-type"] && $0["entity"]?.arrayValue?.contains { $0["query"] != nil } == false })
        #expect(between(1).allSatisfy { $0["entity"]?.arrayValue?.contains { $0["query"] != nil } == true }, "a search's query is recorded")
        #expect(between(1).map(Self.patients) == [["Patient/\(second)"]])
        #expect(Set(between(2).flatMap(Self.patients)) == ["Patient/\(first)", "Patient/\(second)"], "type history: each patient")
        let practitioners = between(3)
        #expect(practitioners.count == 1 && Self.patients(practitioners[0]).isEmpty, "no patient concerned: one event naming none")
    }

    @Test func aHugeQueryIsCutToWhatAuditTakes() async throws {
        let fixture = try await RecordsFixture.make("auditquery")
        let family = String(repeating: "x", count: 40_000)
        try await fixture.app().test(.router) { client in
            let search = try await client.fhir(
                .post, "/fhir/Patient/_search", token: try await fixture.token(.receptionist), body: "family=\(family)",
                headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(search.status == .ok, "\(search.text)")
        }
        let event = try #require(try await Self.events(fixture).last?.event)
        let query = try #require(event["entity"]?.arrayValue?.first { $0["query"] != nil })
        #expect(Base64.decode(query["query"]?.stringValue ?? "") == Array("family=\(family)".utf8.prefix(16 * 1024)))
        #expect(query["detail"]?.arrayValue?.first?["valueString"] == .string("40007, cut to 16384"))
        #expect(event.serialized().count < 64 * 1024)
    }

    @Test func approvalsVerdictsAndDownloadsSaySo() async throws {
        let fixture = try await RecordsFixture.make("auditfacts")
        let (patient, report, binary) = try await fixture.app().test(.router) { client in
            let (doctor, patients) = try await Self.doctorsPatients(["Facts"], fixture, client)
            let patient = patients[0]
            let tech = try await fixture.token(.technologist, fhirUser: "Practitioner/t")
            let report = try await client.create("DiagnosticReport", Sample.report(patient: patient), token: tech)
            var body = try #require(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)", token: doctor).json)
            body = ResourceStamp.setting("status", to: .string("final"), in: body)
            #expect(try await client.fhir(.put, "/fhir/DiagnosticReport/\(report)", token: doctor, body: Self.text(body)).status == .ok)
            body = ResourceStamp.setting("conclusion", to: .string("still normal"), in: ResourceStamp.setting("meta", to: nil, in: body))
            body = ResourceStamp.setting("status", to: .string("amended"), in: body)
            #expect(try await client.fhir(.put, "/fhir/DiagnosticReport/\(report)", token: doctor, body: Self.text(body)).status == .ok)
            #expect(try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)/_history/2/$verify", token: doctor).status == .ok)
            let binary = try await client.fhir(
                .post, "/fhir/Binary", token: tech, body: "scan",
                headers: [.contentType: "text/plain", HTTPField.Name("X-Security-Context")!: "Patient/\(patient)"])
            let location = try #require(binary.headers[.location]?.split(separator: "/"))
            let id = String(location[try #require(location.firstIndex(of: "Binary")) + 1])
            #expect(try await client.fhir(.get, "/fhir/Binary/\(id)", token: doctor, headers: [.accept: "*/*"]).status == .ok)
            return (patient, report, id)
        }
        let events = try await Self.events(fixture).map(\.event)
        let writes = events.filter { ["create", "update"].contains(Self.subtypes($0).first) && Self.text($0).contains("DiagnosticReport/\(report)") }
        #expect(writes.map(Self.subtypes) == [["create"], ["update", "approve"], ["update"]], "only the change to final is an approval")
        let verify = try #require(events.first { Self.subtypes($0).contains("verify") })
        #expect(verify["outcome"] == .string("0") && verify["outcomeDesc"] == .string("$verify: pending"))
        #expect(Self.patients(verify) == ["Patient/\(patient)"])
        let download = try #require(events.last)
        #expect(Self.subtypes(download) == ["read"] && Self.text(download).contains("Binary/\(binary)/_history/1"))
        #expect(Self.patients(download) == ["Patient/\(patient)"])
    }
}
