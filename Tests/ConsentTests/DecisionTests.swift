import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import TestSupport
import Testing

@Suite struct DecisionTests {
    @Test func permitsOnlyWhatAnActiveConsentGrantsNow() async throws {
        let fixture = try await ConsentFixture.make("decisions")
        try await fixture.app(["CONSENT_MAX_AGE": "7"]).test(.router) { client in
            let patient = try await fixture.patient()
            let records = try await fixture.records()
            let all = try await client.createConsent(try Sample.consent(actor: "Organization/o1"), token: patient)
            let lab = try await client.createConsent(try Sample.consent(category: "LAB"), token: patient)
            let report = try await client.createConsent(try Sample.consent(actor: "Practitioner/d2", report: "DiagnosticReport/r1"), token: patient)
            // Granting nothing now: expired, future, not active, deleted.
            _ = try await client.createConsent(try Sample.consent(patient: "Patient/p1", actor: "Practitioner/d2", end: "2020-12-31"), token: patient)
            _ = try await client.createConsent(try Sample.consent(actor: "Practitioner/d2", start: "2999-01-01"), token: patient)
            _ = try await client.createConsent(try Sample.consent(actor: "Practitioner/d2", status: "inactive"), token: patient)
            let deleted = try await client.createConsent(try Sample.consent(actor: "Practitioner/d2", category: "RAD"), token: patient)
            #expect(try await client.send(.delete, "/fhir/Consent/\(deleted)", token: patient).status == .noContent)

            func decide(_ body: String) async throws -> Answer {
                try await client.send(.post, "/decisions", token: records, body: body)
            }
            func basis(_ actor: String, resource: String? = nil, category: [String]? = nil, patient: String = "Patient/p1") async throws -> String? {
                var body = #"{"actor":"\#(actor)","patient":"\#(patient)","action":"read""#
                if let resource { body += #","resource":"\#(resource)""# }
                if let category { body += #","category":[\#(category.map { "\"\($0)\"" }.joined(separator: ","))]"# }
                let answer = try await decide(body + "}")
                #expect(answer.status == .ok, "\(answer.text)")
                #expect(answer.contentType == "application/json")
                #expect(answer.json?["maxAge"] == .number("7"))
                let decision = answer.json?["decision"]?.stringValue
                #expect((decision == "permit") == (answer.json?["basis"] != .null), "\(answer.text)")
                return answer.json?["basis"]?.stringValue
            }
            #expect(try await basis("Organization/o1", resource: "DiagnosticReport/any") == "Consent/\(all)")
            #expect(try await basis("Organization/o1") == "Consent/\(all)")
            #expect(try await basis("Practitioner/d1", resource: "DiagnosticReport/x", category: ["LAB", "RAD"]) == "Consent/\(lab)")
            #expect(try await basis("Practitioner/d1", resource: "DiagnosticReport/x", category: ["RAD"]) == nil)
            #expect(try await basis("Practitioner/d1") == nil)
            #expect(try await basis("Practitioner/d2", resource: "DiagnosticReport/r1") == "Consent/\(report)")
            #expect(try await basis("Practitioner/d2", resource: "DiagnosticReport/r2", category: ["RAD"]) == nil)
            #expect(try await basis("Practitioner/d1", category: ["LAB"], patient: "Patient/p2") == nil)

            // Revocation is immediate: the next decision denies.
            let revoked = try Sample.consent(actor: "Organization/o1", status: "inactive").setting(["id"], .string(all))
            #expect(try await client.send(.put, "/fhir/Consent/\(all)", token: patient, body: revoked.serializedString).status == .ok)
            #expect(try await basis("Organization/o1") == nil)

            // Bad input: problem+json.
            let cases: [(String, HTTPResponse.Status)] = [
                (#"{"actor":"Practitioner/d1","patient":"Patient/p1","action":"write"}"#, .unprocessableContent),
                (#"{"actor":"Practitioner/d1","patient":"Patient/p1"}"#, .unprocessableContent),
                (#"{"actor":"Patient/p2","patient":"Patient/p1","action":"read"}"#, .unprocessableContent),
                (#"{"actor":"d1","patient":"Patient/p1","action":"read"}"#, .unprocessableContent),
                (#"{"actor":"Practitioner/d1","patient":"p1","action":"read"}"#, .unprocessableContent),
                (#"{"actor":"Practitioner/d1","patient":"Patient/p1","action":"read","resource":"Binary/b"}"#, .unprocessableContent),
                (#"{"patient":"Patient/p1","action":"read"}"#, .unprocessableContent),
                (#"{"actor":"Practitioner/d1","patient":"Patient/p1","action":"read","purpose":"x"}"#, .badRequest),
                (#"{"actor":"Practitioner/d1","patient":"Patient/p1","action":"read","category":"LAB"}"#, .badRequest),
                (#"{"actor":"Practitioner/d1","patient":"Patient/p1","action":"read","category":[1]}"#, .badRequest),
                (#"{"actor":7,"patient":"Patient/p1","action":"read"}"#, .badRequest),
                (#"["actor"]"#, .badRequest),
                (#"{"actor":"#, .badRequest),
            ]
            for (body, status) in cases {
                let answer = try await decide(body)
                #expect(answer.status == status, "\(body): \(answer.status) \(answer.text)")
                #expect(answer.contentType == "application/problem+json", "\(body)")
            }
            let big = try await decide(#"{"actor":""# + String(repeating: "x", count: 20_000) + #""}"#)
            #expect(big.status == .contentTooLarge)
        }
    }

    @Test func grantsListWhatAnActorHoldsNow() async throws {
        let fixture = try await ConsentFixture.make("grants")
        try await fixture.app().test(.router) { client in
            let p1 = try await fixture.patient("p1")
            let p2 = try await fixture.patient("p2")
            let records = try await fixture.records()
            let all = try await client.createConsent(try Sample.consent(patient: "Patient/p2", end: "2999-12-31"), token: p2)
            let lab = try await client.createConsent(try Sample.consent(category: "LAB"), token: p1)
            let one = try await client.createConsent(try Sample.consent(start: "2020-01-01", report: "DiagnosticReport/r1"), token: p1)
            _ = try await client.createConsent(try Sample.consent(end: "2020-01-01"), token: p1)
            _ = try await client.createConsent(try Sample.consent(start: "2999-01-01"), token: p1)
            _ = try await client.createConsent(try Sample.consent(status: "proposed"), token: p1)
            _ = try await client.createConsent(try Sample.consent(actor: "Practitioner/d2"), token: p1)

            let answer = try await client.send(.get, "/grants?actor=Practitioner/d1", token: records)
            #expect(answer.status == .ok && answer.contentType == "application/json")
            #expect(answer.json?["maxAge"] == .number("5"))
            let grants = answer.json?["grants"]?.arrayValue ?? []
            let expected: Set<JSONValue> = [
                try JSONParser.parse(
                    #"{"patient":"Patient/p1","scope":"category","category":"LAB","resource":null,"until":null,"basis":"Consent/\#(lab)"}"#),
                try JSONParser.parse(
                    #"{"patient":"Patient/p1","scope":"resource","category":null,"resource":"DiagnosticReport/r1","until":null,"basis":"Consent/\#(one)"}"#
                ),
                try JSONParser.parse(
                    #"{"patient":"Patient/p2","scope":"all","category":null,"resource":null,"until":"3000-01-01T00:00:00.000Z","basis":"Consent/\#(all)"}"#
                ),
            ]
            #expect(Set(grants) == expected)
            #expect(grants.compactMap { $0["patient"]?.stringValue } == ["Patient/p1", "Patient/p1", "Patient/p2"])

            #expect(try await client.send(.get, "/grants?actor=Organization/o1", token: records).json?["grants"] == .array([]))
            let missing = try await client.send(.get, "/grants", token: records)
            #expect(missing.status == .badRequest && missing.contentType == "application/problem+json")
            #expect(try await client.send(.get, "/grants?actor=Patient/p1", token: records).status == .unprocessableContent)
            #expect(try await client.send(.get, "/grants?actor=d1", token: records).status == .unprocessableContent)
        }
    }

    @Test func onlyHoldersOfConsentDecideMayAsk() async throws {
        let fixture = try await ConsentFixture.make("decideauth")
        try await fixture.app().test(.router) { client in
            let body = #"{"actor":"Practitioner/d1","patient":"Patient/p1","action":"read"}"#
            #expect(try await client.send(.post, "/decisions", token: nil, body: body).status == .unauthorized)
            #expect(try await client.send(.get, "/grants?actor=Practitioner/d1", token: nil).status == .unauthorized)
            for token in [
                try await fixture.doctor(), try await fixture.patient(), try await fixture.token(.admin),
                try await fixture.token(.service, scope: "medledger/audit.write"),
            ] {
                let decision = try await client.send(.post, "/decisions", token: token, body: body)
                #expect(decision.status == .forbidden && decision.contentType == "application/problem+json")
                #expect(try await client.send(.get, "/grants?actor=Practitioner/d1", token: token).status == .forbidden)
            }
            // Any role with the scope may ask.
            let userWithScope = try await fixture.token(.admin, scope: Scope.consentDecide)
            #expect(try await client.send(.post, "/decisions", token: userWithScope, body: body).status == .ok)
            let wrongMethod = try await client.send(.get, "/decisions", token: try await fixture.records())
            #expect(wrongMethod.status == .methodNotAllowed && wrongMethod.headers[.allow] == "POST")
        }
    }
}
