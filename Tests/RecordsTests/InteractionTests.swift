import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MedLedgerCore
import PostgresNIO
import TestSupport
import Testing

@Suite struct InteractionTests {
    @Test func createReadVreadUpdateDeleteAndHistory() async throws {
        let fixture = try await RecordsFixture.make("crud")
        try await fixture.app().test(.router) { client in
            let reception = try await fixture.token(.receptionist)
            let created = try await client.fhir(.post, "/fhir/Patient", token: reception, body: Sample.patient("Doe"))
            #expect(created.status == .created)
            let id = try #require(created.id)
            #expect(created.headers[.eTag] == "W/\"1\"")
            #expect(created.headers[.location] == "http://records.test/fhir/Patient/\(id)/_history/1")
            #expect(created.headers[.lastModified] != nil)
            #expect(created.json?["meta"]?["versionId"]?.stringValue == "1")

            var updated = try #require(created.json)
            updated = .object((updated.objectMembers ?? []).map { $0.key == "gender" ? ($0.key, .string("other")) : $0 })
            let update = try await client.fhir(.put, "/fhir/Patient/\(id)", token: reception, body: updated.serializedString, headers: [.ifMatch: "W/\"1\""])
            #expect(update.status == .ok)
            #expect(update.headers[.eTag] == "W/\"2\"")
            let stale = try await client.fhir(.put, "/fhir/Patient/\(id)", token: reception, body: updated.serializedString, headers: [.ifMatch: "W/\"1\""])
            #expect(stale.status == .preconditionFailed)

            let read = try await client.fhir(.get, "/fhir/Patient/\(id)", token: reception)
            #expect(read.json?["gender"]?.stringValue == "other")
            let first = try await client.fhir(.get, "/fhir/Patient/\(id)/_history/1", token: reception)
            #expect(first.json?["gender"]?.stringValue == "female")
            #expect(try await client.fhir(.get, "/fhir/Patient/\(id)/_history/9", token: reception).status == .notFound)

            let minimal = try await client.fhir(
                .put, "/fhir/Patient/\(id)", token: reception, body: updated.serializedString, headers: [HTTPField.Name("Prefer")!: "return=minimal"])
            #expect(minimal.status == .ok && minimal.text.isEmpty && minimal.headers[.eTag] == "W/\"3\"")

            #expect(try await client.fhir(.delete, "/fhir/Patient/\(id)", token: reception).status == .noContent)
            #expect(try await client.fhir(.get, "/fhir/Patient/\(id)", token: reception).status == .gone)
            #expect(try await client.fhir(.delete, "/fhir/Patient/\(id)", token: reception).status == .noContent)
            #expect(try await client.fhir(.get, "/fhir/Patient/\(id)/_history/1", token: reception).status == .ok)
            let history = try await client.fhir(.get, "/fhir/Patient/\(id)/_history", token: reception)
            let methods = (history.json?["entry"]?.arrayValue ?? []).compactMap { $0["request"]?["method"]?.stringValue }
            #expect(methods == ["DELETE", "PUT", "PUT", "POST"])
            #expect(try await client.fhir(.get, "/fhir/Patient?_id=\(id)", token: reception).total == 0)
        }
    }

    @Test func keepsDecimalTextAndUnknownElements() async throws {
        let fixture = try await RecordsFixture.make("decimals")
        try await fixture.app().test(.router) { client in
            let admin = try await fixture.token(.admin)
            let body = #"{"resourceType":"Practitioner","extension":[{"url":"http://x.org/e","valueDecimal":1.50}],"futureElement":{"a":[1.000]}}"#
            let id = try await client.create("Practitioner", body, token: admin)
            let read = try await client.fhir(.get, "/fhir/Practitioner/\(id)", token: admin)
            #expect(read.text.contains(#""valueDecimal":1.50"#))
            #expect(read.text.contains(#""futureElement":{"a":[1.000]}"#))
        }
    }

    @Test func refusesBadInputWithTheRightStatus() async throws {
        let fixture = try await RecordsFixture.make("badinput")
        try await fixture.app().test(.router) { client in
            let admin = try await fixture.token(.admin)
            let id = try await client.create("Practitioner", Sample.practitioner(), token: admin)
            let missingStatus = try await client.fhir(
                .post, "/fhir/DiagnosticReport", token: try await fixture.token(.doctor, fhirUser: "Practitioner/\(id)"),
                body: #"{"resourceType":"DiagnosticReport","code":{"text":"x"},"subject":{"reference":"Patient/p"}}"#)
            #expect(missingStatus.status == .unprocessableContent)
            #expect(missingStatus.json?["issue"]?.arrayValue?.first?["expression"]?.arrayValue?.first?.stringValue == "DiagnosticReport.status")
            #expect(try await client.fhir(.post, "/fhir/Practitioner", token: admin, body: #"{"resourceType":"Patient"}"#).status == .unprocessableContent)
            #expect(try await client.fhir(.post, "/fhir/Practitioner", token: admin, body: #"{"resourceType":"#).status == .badRequest)
            #expect(try await client.fhir(.post, "/fhir/Practitioner", token: admin, body: #"{"resourceType":"Practitioner","birthDate":"1980-13-01"}"#).status == .unprocessableContent)
            #expect(try await client.fhir(.put, "/fhir/Practitioner/\(id)", token: admin, body: Sample.practitioner()).status == .badRequest)
            #expect(try await client.fhir(.get, "/fhir/Practitioner/\(id)", token: admin, headers: [.accept: "application/fhir+xml"]).status == .notAcceptable)
            #expect(try await client.fhir(.post, "/fhir/Practitioner", token: admin, body: "<x/>", headers: [.contentType: "application/xml"]).status == .unsupportedMediaType)
            #expect(try await client.fhir(.patch, "/fhir/Practitioner/\(id)", token: admin).status == .methodNotAllowed)
            #expect(try await client.fhir(.get, "/fhir/Observation/1", token: admin).status == .notFound)
            // PostgreSQL cannot store NUL in text: a 400, not a database failure.
            let nul = try await client.fhir(.get, "/fhir/Practitioner?name=a%00b", token: admin)
            #expect(nul.status == .badRequest && nul.json?["resourceType"]?.stringValue == "OperationOutcome")
            #expect(try await client.fhir(.post, "/fhir/Practitioner", token: admin, body: #"{"resourceType":"Practitioner","x":"\u0000"}"#).status == .unprocessableContent)
            #expect(try await client.fhir(.get, "/fhir/Practitioner/\(id)", token: nil).status == .unauthorized)
            let big = "{\"resourceType\":\"Practitioner\",\"x\":\"" + String(repeating: "a", count: 2 << 20) + "\"}"
            let tooLarge = try await client.fhir(.post, "/fhir/Practitioner", token: admin, body: big)
            #expect(tooLarge.status == .contentTooLarge)
            #expect(tooLarge.json?["resourceType"]?.stringValue == "OperationOutcome")
        }
    }

    @Test func concurrentConditionalCreatesMakeOneResource() async throws {
        let fixture = try await RecordsFixture.make("conditional")
        try await fixture.app().test(.live) { client in
            let reception = try await fixture.token(.receptionist)
            let answers = try await withThrowingTaskGroup(of: FHIRAnswer.self) { group in
                for _ in 0..<12 {
                    group.addTask {
                        try await client.fhir(
                            .post, "/fhir/Patient", token: reception, body: Sample.patient("Same", identifier: "mrn-1"),
                            headers: [HTTPField.Name("If-None-Exist")!: "identifier=urn%3Amrn%7Cmrn-1"])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == .created }.count == 1)
            #expect(answers.allSatisfy { $0.status == .created || $0.status == .ok })
            #expect(Set(answers.compactMap(\.id)).count == 1)
            #expect(try await client.fhir(.get, "/fhir/Patient?identifier=urn:mrn%7Cmrn-1", token: reception).total == 1)
        }
    }

    /// Each new patient gets its own data key, made inside the create's transaction; many at
    /// once all go through and leave exactly one key each.
    @Test func concurrentCreatesOfNewPatientsEachGetOneDataKey() async throws {
        let fixture = try await RecordsFixture.make("newkeys")
        try await fixture.app().test(.live) { client in
            let reception = try await fixture.token(.receptionist)
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for n in 0..<48 {
                    group.addTask { try await client.fhir(.post, "/fhir/Patient", token: reception, body: Sample.patient("Crowd\(n)")).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == .created }, "\(statuses)")
            #expect(try await client.fhir(.get, "/fhir/Patient?family=crowd&_summary=count", token: reception).total == 48)
        }
        let keys = try await fixture.withDatabase { postgres in
            try await postgres.query("SELECT count(*) FROM data_keys", logger: Logger(label: "test")).collect().first!.decode(Int.self)
        }
        #expect(keys == 48)
    }

    @Test func concurrentUpdatesWithOneIfMatchHaveOneWinner() async throws {
        let fixture = try await RecordsFixture.make("ifmatch")
        try await fixture.app().test(.live) { client in
            let reception = try await fixture.token(.receptionist)
            let created = try await client.fhir(.post, "/fhir/Patient", token: reception, body: Sample.patient("Race"))
            let resource = try #require(created.json)
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        try await client.fhir(.put, "/fhir/Patient/\(created.id!)", token: reception, body: resource.serializedString, headers: [.ifMatch: "W/\"1\""])
                            .status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .ok }.count == 1)
            #expect(statuses.filter { $0 == .preconditionFailed }.count == 9)
        }
    }
}

extension JSONValue {
    var objectMembers: [(key: String, value: JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }
}
