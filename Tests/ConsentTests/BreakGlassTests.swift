import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import PostgresNIO
import TestSupport
import Testing

@Suite struct BreakGlassTests {
    static let reason = "unconscious in the emergency room, allergies unknown"

    @Test func lifecycleGrantsAndAudit() async throws {
        let fixture = try await ConsentFixture.make("breakglass")
        try await fixture.app(["BREAK_GLASS_MINUTES": "30"]).test(.router) { client in
            let d1 = try await fixture.doctor("d1")
            let records = try await fixture.records()
            let body = #"{"patient":"Patient/p1","reason":"  \#(Self.reason)  "}"#
            let started = try await client.send(.post, "/break-glass", token: d1, body: body)
            #expect(started.status == .created, "\(started.text)")
            let id = try #require(started.json?["id"]?.stringValue)
            #expect(started.headers[.location] == "/break-glass/\(id)")
            #expect(started.json?["actor"]?.stringValue == "Practitioner/d1" && started.json?["patient"]?.stringValue == "Patient/p1")
            #expect(started.json?["reason"]?.stringValue == Self.reason)
            #expect(started.json?["status"]?.stringValue == "active" && started.json?["ended"] == .null)
            let start = try #require(started.json?["started"]?.stringValue.flatMap { FHIRDate.range(of: $0, kind: .instant)?.low })
            let expires = try #require(started.json?["expires"]?.stringValue.flatMap { FHIRDate.range(of: $0, kind: .instant)?.low })
            #expect(expires.timeIntervalSince(start) == 30 * 60)

            // It grants everything of that patient, and shows as such to records.
            let decision = try await client.send(
                .post, "/decisions", token: records, body: #"{"actor":"Practitioner/d1","patient":"Patient/p1","action":"read","category":["RAD"]}"#)
            #expect(decision.json?["decision"]?.stringValue == "permit" && decision.json?["basis"]?.stringValue == "break-glass/\(id)")
            let grants = try await client.send(.get, "/grants?actor=Practitioner/d1", token: records).json?["grants"]?.arrayValue ?? []
            #expect(grants.count == 1 && grants.first?["scope"]?.stringValue == "all" && grants.first?["basis"]?.stringValue == "break-glass/\(id)")
            #expect(grants.first?["until"]?.stringValue == started.json?["expires"]?.stringValue)
            // A consent is preferred as the basis when both grant.
            let consent = try await client.createConsent(try Sample.consent(), token: try await fixture.patient())
            let both = try await client.send(
                .post, "/decisions", token: records, body: #"{"actor":"Practitioner/d1","patient":"Patient/p1","action":"read"}"#)
            #expect(both.json?["basis"]?.stringValue == "Consent/\(consent)")

            // Who sees it: the doctor, the patient (their audit view), admins.
            let patient = try await fixture.patient("p1")
            let admin = try await fixture.token(.admin)
            for token in [d1, patient, admin] {
                #expect(try await client.send(.get, "/break-glass/\(id)", token: token).json?["status"]?.stringValue == "active")
                let listed = try await client.send(.get, "/break-glass?patient=Patient/p1", token: token)
                #expect(listed.json?["sessions"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [id])
            }
            for token in [try await fixture.doctor("d2"), try await fixture.patient("p2")] {
                #expect(try await client.send(.get, "/break-glass/\(id)", token: token).status == .notFound)
                #expect(try await client.send(.get, "/break-glass?patient=Patient/p1", token: token).json?["sessions"] == .array([]))
            }
            for token in [try await fixture.receptionist(), try await fixture.token(.technologist), records] {
                let refused = try await client.send(.get, "/break-glass/\(id)", token: token)
                #expect(refused.status == .forbidden && refused.contentType == "application/problem+json")
            }

            // Ending: someone else's is a 404; the doctor's own ends it, once.
            #expect(try await client.send(.delete, "/break-glass/\(id)", token: try await fixture.doctor("d2")).status == .notFound)
            #expect(try await client.send(.delete, "/break-glass/\(id)", token: patient).status == .forbidden)
            let ended = try await client.send(.delete, "/break-glass/\(id)", token: d1)
            #expect(ended.status == .ok && ended.json?["status"]?.stringValue == "ended" && ended.json?["ended"]?.stringValue != nil)
            let endedBy = try await withPostgres(fixture.databaseURL) { client in
                try await client.query("SELECT ended_by FROM break_glass WHERE id = \(id)", logger: testLogger).collect().first?.decode(String?.self)
            }
            #expect(endedBy == "Practitioner/d1")
            let again = try await client.send(.delete, "/break-glass/\(id)", token: d1)
            #expect(again.status == .ok && again.json?["ended"] == ended.json?["ended"])
            let after = try await client.send(.get, "/grants?actor=Practitioner/d1", token: records).json?["grants"]?.arrayValue ?? []
            #expect(after.compactMap { $0["basis"]?.stringValue } == ["Consent/\(consent)"])

            // Each start and end is a high-severity security alert about the patient.
            let alerts = try await fixture.auditEvents().filter { $0["type"]?["code"]?.stringValue == "110113" }
            #expect(alerts.compactMap { $0["subtype"]?.arrayValue?.first?["code"]?.stringValue } == ["start", "end"])
            for alert in alerts {
                #expect(alert["purposeOfEvent"]?.arrayValue?.first?["coding"]?.arrayValue?.first?["code"]?.stringValue == "BTG")
                #expect(alert["extension"]?.arrayValue?.first?["valueCode"]?.stringValue == "alert")
                let patientEntity = alert["entity"]?.arrayValue?.first { $0["what"]?["reference"]?.stringValue == "Patient/p1" }
                #expect(patientEntity?["description"]?.stringValue == Self.reason)
                #expect(alert["agent"]?.arrayValue?.first?["who"]?["reference"]?.stringValue == "Practitioner/d1")
            }
        }
    }

    @Test func expiryAndListing() async throws {
        let fixture = try await ConsentFixture.make("expiry")
        try await fixture.app().test(.router) { client in
            let d1 = try await fixture.doctor("d1")
            let records = try await fixture.records()
            var ids: [String] = []
            for patient in ["Patient/p1", "Patient/p2", "Patient/p1"] {
                let answer = try await client.send(.post, "/break-glass", token: d1, body: #"{"patient":"\#(patient)","reason":"\#(Self.reason)"}"#)
                ids.append(try #require(answer.json?["id"]?.stringValue))
            }
            // A second session for the same patient is a new one; both are listed, newest first.
            let listed = try await client.send(.get, "/break-glass", token: d1)
            #expect(Set(listed.json?["sessions"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == Set(ids))
            #expect(try await client.send(.get, "/break-glass?patient=Patient/p1&limit=1", token: d1).json?["sessions"]?.arrayValue?.count == 1)
            #expect(try await client.send(.get, "/break-glass?limit=0", token: d1).status == .badRequest)
            #expect(try await client.send(.get, "/break-glass?patient=p1", token: d1).status == .unprocessableContent)

            // Time passes: the first session's expiry is reached.
            try await fixture.execute(
                "UPDATE break_glass SET started_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' WHERE id = \(ids[0])")
            #expect(try await client.send(.get, "/break-glass/\(ids[0])", token: d1).json?["status"]?.stringValue == "expired")
            let ending = try await client.send(.delete, "/break-glass/\(ids[0])", token: d1)
            #expect(ending.status == .ok && ending.json?["status"]?.stringValue == "expired" && ending.json?["ended"] == .null)
            let grants = try await client.send(.get, "/grants?actor=Practitioner/d1", token: records).json?["grants"]?.arrayValue ?? []
            #expect(Set(grants.compactMap { $0["basis"]?.stringValue }) == ["break-glass/\(ids[1])", "break-glass/\(ids[2])"])
            #expect(grants.compactMap { $0["patient"]?.stringValue } == ["Patient/p1", "Patient/p2"])
            // Only start events so far (the expired one was never ended).
            #expect(try await fixture.auditEvents().count == 3)
        }
    }

    @Test func onlyDoctorsBreakTheGlassWithAReason() async throws {
        let fixture = try await ConsentFixture.make("bgrules")
        try await fixture.app().test(.router) { client in
            let d1 = try await fixture.doctor("d1")
            let cases: [(String, HTTPResponse.Status)] = [
                (#"{"patient":"Patient/p1","reason":"   short   "}"#, .unprocessableContent),
                (#"{"patient":"Patient/p1","reason":"\#(String(repeating: "x", count: 2001))"}"#, .unprocessableContent),
                (#"{"patient":"Patient/p1"}"#, .unprocessableContent),
                (#"{"patient":"Patient/nobody","reason":"\#(Self.reason)"}"#, .unprocessableContent),
                (#"{"patient":"p1","reason":"\#(Self.reason)"}"#, .unprocessableContent),
                (#"{"patient":"Patient/p1","reason":"\#(Self.reason)","until":"tomorrow"}"#, .badRequest),
                (#"{"patient":"Patient/p1","reason":7}"#, .unprocessableContent),
                (#"not json"#, .badRequest),
            ]
            for (body, status) in cases {
                let answer = try await client.send(.post, "/break-glass", token: d1, body: body)
                #expect(answer.status == status, "\(body): \(answer.status) \(answer.text)")
                #expect(answer.contentType == "application/problem+json")
            }
            let body = #"{"patient":"Patient/p1","reason":"\#(Self.reason)"}"#
            for token in [
                try await fixture.patient(), try await fixture.receptionist(), try await fixture.token(.admin), try await fixture.records(),
                try await fixture.token(.doctor, fhirUser: "Practitioner/d1", scope: "user/Consent.rs"), try await fixture.token(.doctor),
            ] {
                #expect(try await client.send(.post, "/break-glass", token: token, body: body).status == .forbidden)
            }
            #expect(try await client.send(.post, "/break-glass", token: nil, body: body).status == .unauthorized)
            #expect(try await client.send(.get, "/break-glass/\(UUID().uuidString.lowercased())", token: d1).status == .notFound)
            #expect(try await client.send(.put, "/break-glass/x", token: d1, body: body).status == .methodNotAllowed)
            #expect(try await fixture.auditEvents().isEmpty)
        }
    }
}
