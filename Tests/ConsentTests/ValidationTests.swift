import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import PostgresNIO
import TestSupport
import Testing

@Suite struct ValidationTests {
    /// Each body breaks one rule: 422 with the element it is about and a message saying what MedLedger supports.
    @Test func refusesConsentsMedLedgerCannotHonour() async throws {
        let fixture = try await ConsentFixture.make("rules")
        let valid = try Sample.consent()
        let json = { (text: String) throws -> JSONValue in try JSONParser.parse(text) }
        let cases: [(String, JSONValue, String, String)] = [
            (
                "unknown actor", try Sample.consent(actor: "Practitioner/ghost"), "Consent.provision.actor[0].reference",
                "actor Practitioner/ghost does not exist"
            ),
            (
                "end before start", try Sample.consent(start: "2026-05-01", end: "2026-04-01"), "Consent.provision.period",
                "start must not be after its end"
            ),
            ("unknown category", try Sample.consent(category: "XYZ"), "Consent.provision.code[0]", "unknown category XYZ"),
            ("deny provision", valid.setting(["provision", "type"], .string("deny")), "Consent.provision.type", "deny rules are not supported"),
            ("no provision type", valid.setting(["provision", "type"], nil), "Consent.provision.type", "must be permit"),
            (
                "two actors",
                valid.setting(
                    ["provision", "actor"],
                    .array(
                        (valid["provision"]?["actor"]?.arrayValue ?? [])
                            + [try json(#"{"role":{"text":"x"},"reference":{"reference":"Practitioner/d2"}}"#)])),
                "Consent.provision.actor", "exactly one actor"
            ),
            (
                "data and code", try Sample.consent(report: "DiagnosticReport/r1", category: "LAB"), "Consent.provision",
                "provision.data and provision.code exclude each other"
            ),
            ("missing policyRule", valid.setting(["policyRule"], nil), "Consent", "ppc-1"),
            (
                "wrong scope code",
                valid.setting(
                    ["scope"], try json(#"{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"research"}]}"#)),
                "Consent.scope", "patient-privacy"
            ),
            ("no patient", valid.setting(["patient"], nil), "Consent.patient", "patient is required"),
            ("patient as identifier", valid.setting(["patient"], try json(#"{"identifier":{"value":"123"}}"#)), "Consent.patient", "Patient/{id}"),
            ("no status", valid.setting(["status"], nil), "Consent.status", "status is required"),
            ("unknown status", valid.setting(["status"], .string("granted")), "Consent.status", "must be one of"),
            ("no category", valid.setting(["category"], nil), "Consent.category", "category is required"),
            ("no access action", valid.setting(["provision", "action"], nil), "Consent.provision.action", "access"),
            (
                "nested provision", valid.setting(["provision", "provision"], .array([try json(#"{"type":"deny"}"#)])), "Consent.provision.provision",
                "nested"
            ),
            (
                "actor a patient", try Sample.consent(actor: "Patient/p2"), "Consent.provision.actor[0].reference",
                "Practitioner/{id} or an Organization/{id}"
            ),
            (
                "data not a report", try Sample.consent(report: "Patient/p1"), "Consent.provision.data",
                "reference DiagnosticReport/{id}"
            ),
            ("empty string", valid.setting(["dateTime"], .string("")), "Consent.dateTime", "must not be an empty string"),
            ("bad dateTime", valid.setting(["dateTime"], .string("2026-13-01")), "Consent.dateTime", "dateTime"),
            (
                "actor without role", valid.setting(["provision", "actor"], try json(#"[{"reference":{"reference":"Practitioner/d1"}}]"#)),
                "Consent.provision.actor[0].role", "role is required"
            ),
            ("extension not an array", valid.setting(["extension"], .string("x")), "Consent.extension", "array"),
        ]
        try await fixture.app().test(.router) { client in
            let patient = try await fixture.patient()
            for (name, body, expression, message) in cases {
                let answer = try await client.send(.post, "/fhir/Consent", token: patient, body: body.serializedString)
                #expect(answer.status == .unprocessableContent, "\(name): \(answer.status) \(answer.text)")
                #expect(answer.json?["resourceType"]?.stringValue == "OperationOutcome", "\(name)")
                let issues = answer.json?["issue"]?.arrayValue ?? []
                let found = issues.contains { issue in
                    issue["expression"]?.arrayValue?.first?.stringValue == expression && issue["diagnostics"]?.stringValue?.contains(message) == true
                }
                #expect(found, "\(name): expected \(expression) “\(message)” in \(answer.text)")
            }
            // Nothing invalid was stored, so nothing was audited.
            #expect(try await fixture.auditEvents().isEmpty)
        }
    }

    @Test func acceptsEveryGrantShape() async throws {
        let fixture = try await ConsentFixture.make("shapes")
        try await fixture.app().test(.router) { client in
            let patient = try await fixture.patient()
            for body in [
                try Sample.consent(), try Sample.consent(actor: "Organization/o1"), try Sample.consent(category: "RAD"),
                try Sample.consent(report: "DiagnosticReport/r1"), try Sample.consent(status: "draft", start: "2026-01-01", end: "2026-01-01"),
            ] {
                _ = try await client.createConsent(body, token: patient)
            }
            let rows = try await withPostgres(fixture.databaseURL) { client in
                var rows: [String] = []
                let query = try await client.query(
                    "SELECT actor, grant_scope, coalesce(category, '-'), coalesce(resource, '-'), period_end - period_start FROM consents ORDER BY last_updated",
                    logger: testLogger)
                for try await (actor, scope, category, resource, length) in query.decode((String, String, String, String, Int64?).self) {
                    rows.append("\(actor) \(scope) \(category) \(resource) \(length.map(String.init) ?? "open")")
                }
                return rows
            }
            #expect(
                rows == [
                    "Practitioner/d1 all - - open", "Organization/o1 all - - open", "Practitioner/d1 category RAD - open",
                    "Practitioner/d1 resource - DiagnosticReport/r1 open",
                    // A period of one day lasts the whole day.
                    "Practitioner/d1 all - - 86400000000",
                ])
        }
    }

    @Test func refusesBadRequestsWithTheRightStatus() async throws {
        let fixture = try await ConsentFixture.make("badinput")
        try await fixture.app().test(.router) { client in
            let patient = try await fixture.patient()
            let id = try await client.createConsent(try Sample.consent(), token: patient)
            let malformed = try await client.send(.post, "/fhir/Consent", token: patient, body: #"{"resourceType":"#)
            #expect(malformed.status == .badRequest && malformed.json?["resourceType"]?.stringValue == "OperationOutcome")
            let wrongType = try await client.send(.post, "/fhir/Consent", token: patient, body: #"{"resourceType":"Patient"}"#)
            #expect(wrongType.status == .unprocessableContent && wrongType.issue?.expression == "Consent.resourceType")
            #expect(try await client.send(.post, "/fhir/Consent", token: patient, body: "[1]").status == .badRequest)
            let big = try Sample.consent().setting(["note"], .string(String(repeating: "a", count: 70_000)))
            let tooLarge = try await client.send(.post, "/fhir/Consent", token: patient, body: big.serializedString)
            #expect(tooLarge.status == .contentTooLarge && tooLarge.json?["resourceType"]?.stringValue == "OperationOutcome")
            #expect(try await client.send(.get, "/fhir/Consent/\(UUID().uuidString.lowercased())", token: patient).status == .notFound)
            #expect(
                try await client.send(
                    .put, "/fhir/Consent/\(UUID().uuidString.lowercased())", token: patient, body: try Sample.consent().serializedString
                ).status == .badRequest)
            let unknown = UUID().uuidString.lowercased()
            let updateUnknown = try Sample.consent().setting(["id"], .string(unknown))
            #expect(try await client.send(.put, "/fhir/Consent/\(unknown)", token: patient, body: updateUnknown.serializedString).status == .notFound)
            let mismatch = try Sample.consent().setting(["id"], .string(id))
            let stale = try await client.send(
                .put, "/fhir/Consent/\(id)", token: patient, body: mismatch.serializedString, headers: [.ifMatch: "W/\"7\""])
            #expect(stale.status == .preconditionFailed)
            #expect(
                try await client.send(.put, "/fhir/Consent/\(id)", token: patient, body: mismatch.serializedString, headers: [.ifMatch: "7"]).status
                    == .badRequest)
            #expect(
                try await client.send(.get, "/fhir/Consent/\(id)", token: patient, headers: [.accept: "application/fhir+xml"]).status
                    == .notAcceptable)
            #expect(
                try await client.send(.post, "/fhir/Consent", token: patient, body: "<Consent/>", headers: [.contentType: "application/xml"]).status
                    == .unsupportedMediaType)
            let patch = try await client.send(.patch, "/fhir/Consent/\(id)", token: patient)
            #expect(patch.status == .methodNotAllowed && patch.headers[.allow] == "GET, PUT, DELETE")
            #expect(patch.json?["resourceType"]?.stringValue == "OperationOutcome")
            #expect(try await client.send(.delete, "/fhir/Consent", token: patient).status == .methodNotAllowed)
            #expect(try await client.send(.get, "/fhir/Observation/1", token: patient).status == .notFound)
            // A NUL cannot be stored in PostgreSQL text: 400 or 422, never a database failure.
            let nul = try Sample.consent().setting(["note"], .string("a\u{0}b"))
            #expect(try await client.send(.post, "/fhir/Consent", token: patient, body: nul.serializedString).status == .unprocessableContent)
            #expect(try await client.send(.get, "/fhir/Consent?status=a%00b", token: patient).status == .badRequest)
            let unauthenticated = try await client.send(.get, "/fhir/Consent/\(id)", token: nil)
            #expect(unauthenticated.status == .unauthorized && unauthenticated.json?["resourceType"]?.stringValue == "OperationOutcome")
        }
    }
}
