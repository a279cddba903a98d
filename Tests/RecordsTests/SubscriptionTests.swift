import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MedLedgerCore
import PostgresNIO
@testable import Records
import TestSupport
import Testing

/// FHIR Subscriptions: what is accepted, who may subscribe to what, and delivery to a real
/// receiver (signed, numbered, in order, retried, only what the subscriber may read).
@Suite struct SubscriptionTests {
    static func subscription(_ criteria: String, endpoint: String?, content: String? = nil, status: String = "requested", extra: String = "") -> String {
        let endpointPart = endpoint.map { #","endpoint":"\#($0)","payload":"application/fhir+json""# } ?? ""
        let contentPart = content.map {
            #","_payload":{"extension":[{"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content","valueCode":"\#($0)"}]}"#
        } ?? ""
        let type = endpoint == nil ? "websocket" : "rest-hook"
        return #"{"resourceType":"Subscription","status":"\#(status)","reason":"test","criteria":"\#(criteria)","channel":{"type":"\#(type)"\#(endpointPart)\#(contentPart)\#(extra)}}"#
    }

    func spec(_ text: String, development: Bool = true) throws(Problem) -> SubscriptionSpec {
        try SubscriptionSpec(try! JSONParser.parse(text), development: development)
    }

    @Test func whatRecordsCannotDeliverIs422() throws {
        let hook = "http://127.0.0.1:9/hook"
        let refused = [
            Self.subscription("Patient?name=x", endpoint: hook),
            Self.subscription("DiagnosticReport?unknown=1", endpoint: hook),
            Self.subscription("DiagnosticReport?_count=5", endpoint: hook),
            Self.subscription("DiagnosticReport?_include=DiagnosticReport:patient", endpoint: hook),
            Self.subscription("DiagnosticReport?date=notadate", endpoint: hook),
            Self.subscription("DiagnosticReport?status=final", endpoint: "http://ehr.example/hook"),
            Self.subscription("DiagnosticReport?status=final", endpoint: "ftp://127.0.0.1/hook"),
            Self.subscription("DiagnosticReport?status=final", endpoint: "https://user:pw@ehr.example/hook"),
            Self.subscription("DiagnosticReport?status=final", endpoint: "not a url"),
            Self.subscription("DiagnosticReport?status=final", endpoint: hook, content: "everything"),
            Self.subscription("DiagnosticReport?status=final", endpoint: hook, status: "error"),
            Self.subscription("DiagnosticReport?status=final", endpoint: hook, extra: #","header":["no colon"]"#),
            Self.subscription("DiagnosticReport?status=final", endpoint: hook, extra: #","header":["X-MedLedger-Signature: forged"]"#),
            Self.subscription("DiagnosticReport?status=final", endpoint: hook, extra: #","header":["Content-Type: text/plain"]"#),
            Self.subscription("DiagnosticReport", endpoint: hook).replacingOccurrences(of: #""rest-hook""#, with: #""email""#),
            Self.subscription("DiagnosticReport", endpoint: hook).replacingOccurrences(of: "application/fhir+json", with: "application/fhir+xml"),
            Self.subscription("DiagnosticReport", endpoint: nil, extra: #","endpoint":"https://ehr.example/ws""#),
            Self.subscription("DiagnosticReport?status=final", endpoint: hook, status: "off"),
            Self.subscription("DiagnosticReport", endpoint: nil).replacingOccurrences(of: #""reason":"test""#, with: #""reason":"test","text":null"#),
            Self.subscription("DiagnosticReport", endpoint: nil).replacingOccurrences(of: #""reason":"test""#, with: #""reason":"test","meta":{"profile":null}"#),
            Self.subscription("DiagnosticReport", endpoint: nil).replacingOccurrences(of: #""reason":"test""#, with: #""reason":"test","S":null"#),
            Self.subscription("DiagnosticReport", endpoint: nil).replacingOccurrences(of: #""reason":"test""#, with: #""reason":"test","end":5"#),
            Self.subscription("DiagnosticReport", endpoint: nil).replacingOccurrences(of: #""reason":"test""#, with: #""reason":"test","0":"x""#),
            Self.subscription("DiagnosticReport", endpoint: nil).replacingOccurrences(of: #""type":"websocket""#, with: #""type":"websocket","extra":true"#),
            #"{"resourceType":"Subscription","status":"active","criteria":"DiagnosticReport","channel":{"type":"websocket"}}"#,
            #"{"resourceType":"Subscription","status":"active","reason":"r","channel":{"type":"websocket"}}"#,
            #"{"resourceType":"Subscription","status":"active","reason":"r","criteria":"DiagnosticReport","end":"soon","channel":{"type":"websocket"}}"#,
        ]
        for text in refused {
            #expect(throws: Problem.self, "\(text)") { _ = try spec(text) }
            do { _ = try spec(text) } catch { #expect(error.status == .unprocessableContent, "\(text): \(error)") }
        }
    }

    @Test func payloadContentAndEndpointsAsR4AndTheBackportSay() throws {
        #expect(try spec(Self.subscription("DiagnosticReport?status=final", endpoint: "https://ehr.example/hook")).content == .fullResource)
        #expect(try spec(Self.subscription("DiagnosticReport", endpoint: "https://ehr.example/hook", content: "id-only")).content == .idOnly)
        let noPayload = Self.subscription("DiagnosticReport", endpoint: "https://ehr.example/hook").replacingOccurrences(
            of: #","payload":"application/fhir+json""#, with: "")
        #expect(try spec(noPayload).content == .empty)
        #expect(try spec(Self.subscription("DiagnosticReport", endpoint: nil)).channel == .websocket)
        let extended = Self.subscription("DiagnosticReport", endpoint: nil).replacingOccurrences(
            of: #""reason":"test""#, with: #""reason":"test","_reason":{"extension":[{"url":"urn:x","valueString":"y"}]},"extension":[{"url":"urn:x","valueString":"y"}]"#)
        #expect(try spec(extended).channel == .websocket)
        #expect(try spec(Self.subscription("DiagnosticReport?status=final", endpoint: "http://localhost:8080/hook")).endpoint?.port == 8080)
        #expect(throws: Problem.self) { _ = try spec(Self.subscription("DiagnosticReport", endpoint: "http://127.0.0.1:9/hook"), development: false) }
        let headers = try spec(Self.subscription("DiagnosticReport", endpoint: "https://ehr.example/hook", extra: #","header":["Authorization: Bearer abc"]"#)).headers
        #expect(headers.map(\.name) == ["Authorization"] && headers.map(\.value) == ["Bearer abc"])
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "[::1]"] { #expect(SubscriptionSpec.isLoopback(host), "\(host)") }
        for host in ["128.0.0.1", "127.0.0.1.evil.example", "10.0.0.1", "example.com", "127.0.0"] { #expect(!SubscriptionSpec.isLoopback(host), "\(host)") }
    }

    @Test func backoffDoublesUpToItsCap() {
        let settings = SubscriptionSettings(retryBaseMilliseconds: 200, retryMaxMilliseconds: 2000, maxFailures: 10, timeoutMilliseconds: 1000)
        #expect((1...6).map { settings.backoff(failures: $0) } == [200, 400, 800, 1600, 2000, 2000].map { Duration.milliseconds($0) })
        #expect(settings.backoff(failures: 500) == .milliseconds(2000))
    }

    /// RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
    @Test func keyIDIsTheRFC7638Thumbprint() throws {
        let x = try #require(Base64.decodeLenient("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"))
        let key = try Curve25519.Signing.PublicKey(rawRepresentation: x)
        #expect(NotificationSigner.thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
    }

    @Test func subscriptionsAreTheirOwnersAlone() async throws {
        let fixture = try await RecordsFixture.make("subscriptions")
        try await fixture.app().test(.router) { client in
            let people = try await People.make(client, fixture)
            let body = Self.subscription("DiagnosticReport?patient=Patient/\(people.mine)&status=final", endpoint: "http://127.0.0.1:9/hook")
            let created = try await client.fhir(.post, "/fhir/Subscription", token: people.doctor, body: body)
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(created.id)
            #expect(created.headers[.location]?.hasSuffix("/fhir/Subscription/\(id)/_history/1") == true)
            #expect(created.json?["status"]?.stringValue == "active")

            // Nobody else learns it exists; roles that read no reports cannot subscribe.
            #expect(try await client.fhir(.get, "/fhir/Subscription/\(id)", token: people.otherDoctor).status == .notFound)
            #expect(try await client.fhir(.get, "/fhir/Subscription/\(id)", token: people.doctor).status == .ok)
            for token in [people.admin, people.reception, people.tech] {
                #expect(try await client.fhir(.post, "/fhir/Subscription", token: token, body: body).status == .forbidden)
            }
            #expect(try await client.fhir(.post, "/fhir/Subscription", token: nil, body: body).status == .unauthorized)
            // Criteria pinned to a patient the caller may not read: 403.
            #expect(try await client.fhir(.post, "/fhir/Subscription", token: people.otherDoctor, body: body).status == .forbidden)
            for criteria in ["patient=\(people.theirs)", "subject=Patient/\(people.theirs)", "patient=\(people.mine),\(people.theirs)"] {
                let othersReports = Self.subscription("DiagnosticReport?\(criteria)", endpoint: "http://127.0.0.1:9/hook")
                #expect(try await client.fhir(.post, "/fhir/Subscription", token: people.patient, body: othersReports).status == .forbidden, "\(criteria)")
            }
            let ownReports = Self.subscription("DiagnosticReport?patient=\(people.mine)", endpoint: "http://127.0.0.1:9/hook")
            #expect(try await client.fhir(.post, "/fhir/Subscription", token: people.patient, body: ownReports).status == .created)
            #expect(try await client.fhir(.post, "/fhir/Subscription", token: people.doctor, body: #"{"resourceType":"Subscription""#).status == .badRequest)
            // Past its `end`, a subscription is off (R4's auto-off).
            let ended = ownReports.replacingOccurrences(of: #""reason""#, with: #""end":"2020-01-01T00:00:00Z","reason""#)
            #expect(try await client.fhir(.post, "/fhir/Subscription", token: people.patient, body: ended).json?["status"]?.stringValue == "off")

            // Update with If-Match, pause, search and delete.
            let paused = body.replacingOccurrences(of: #""status":"requested""#, with: #""id":"\#(id)","status":"off""#)
            #expect(try await client.fhir(.put, "/fhir/Subscription/\(id)", token: people.doctor, body: paused, headers: [.ifMatch: "W/\"7\""]).status == .preconditionFailed)
            let updated = try await client.fhir(.put, "/fhir/Subscription/\(id)", token: people.doctor, body: paused, headers: [.ifMatch: "W/\"1\""])
            #expect(updated.status == .ok && updated.json?["status"]?.stringValue == "off" && updated.headers[.eTag] == "W/\"2\"")
            #expect(try await client.fhir(.put, "/fhir/Subscription/\(id)", token: people.otherDoctor, body: paused).status == .notFound)
            #expect(try await client.fhir(.get, "/fhir/Subscription?status=off", token: people.doctor).entryIDs == [id])
            #expect(try await client.fhir(.get, "/fhir/Subscription?status=active", token: people.doctor).entryIDs == [])
            #expect(try await client.fhir(.get, "/fhir/Subscription", token: people.otherDoctor).entryIDs == [])
            #expect(try await client.fhir(.delete, "/fhir/Subscription/\(id)", token: people.otherDoctor).status == .notFound)
            #expect(try await client.fhir(.delete, "/fhir/Subscription/\(id)", token: people.doctor).status == .noContent)
            #expect(try await client.fhir(.get, "/fhir/Subscription/\(id)", token: people.doctor).status == .gone)
            #expect(try await client.fhir(.get, "/fhir/Subscription/\(id)/$status", token: people.doctor).status == .gone)
            #expect(try await client.fhir(.patch, "/fhir/Subscription/\(id)", token: people.doctor).status == .methodNotAllowed)
        }
    }

    @Test func deliversWhatTheSubscriberMayReadOnceSignedAndInOrder() async throws {
        let fixture = try await RecordsFixture.make("delivery")
        let receiver = NotificationReceiver()
        try await receiver.serving { hook in
            try await fixture.app().test(.router) { client in
                let people = try await People.make(client, fixture)
                // Unpinned criteria: preliminary LAB reports of two codes, narrowed to what the doctor may read.
                let body = Self.subscription("DiagnosticReport?status=preliminary&category=LAB&code=58410-2,1234-5", endpoint: hook, extra: #","header":["Authorization: Bearer receiver-secret"]"#)
                let id = try #require(try await client.fhir(.post, "/fhir/Subscription", token: people.doctor, body: body).id)
                let first = try await client.create("DiagnosticReport", Sample.report(patient: people.mine), token: people.tech)
                let hidden = try await client.create("DiagnosticReport", Sample.report(patient: people.theirs), token: people.tech)
                let second = try await client.create("DiagnosticReport", Sample.report(patient: people.mine, code: "1234-5"), token: people.tech)
                _ = try await client.create("DiagnosticReport", Sample.report(patient: people.mine, code: "9999-9"), token: people.tech)

                let received = try await receiver.waitFor(2)
                #expect(received.count == 2)
                #expect(received.map { $0.header("X-MedLedger-Event-Number") } == ["1", "2"])
                #expect(received.allSatisfy { $0.header("Authorization") == "Bearer receiver-secret" && $0.header("X-MedLedger-Subscription") == id })
                let jwks = try await client.execute(uri: "/.well-known/jwks.json", method: .get)
                let key = try #require(JSONParser.parse(jwks.body.readableBytesView)["keys"]?.arrayValue?.first)
                for (notification, report) in zip(received, [first, second]) {
                    #expect(try Self.verify(notification, key: key))
                    var tampered = notification
                    tampered.body[tampered.body.count / 2] ^= 1
                    #expect(try !Self.verify(tampered, key: key))
                    // full-resource: the version exactly as vread serves it.
                    let bundle = try JSONParser.parse(notification.body)
                    let entries = try #require(bundle["entry"]?.arrayValue)
                    let vread = try await client.fhir(.get, "/fhir/DiagnosticReport/\(report)/_history/1", token: people.doctor)
                    #expect(entries.count == 2 && entries[1]["resource"] == vread.json)
                }
                // The hidden one was matched, then skipped at delivery: no number, never sent.
                let status = try await client.fhir(.get, "/fhir/Subscription/\(id)/$status", token: people.doctor)
                let events = (status.json?["parameter"]?.arrayValue ?? []).filter { $0["name"]?.stringValue == "notification-event" }
                let states = events.map { event in
                    (event["part"]?.arrayValue ?? []).first { $0["name"]?.stringValue == "state" }?["valueCode"]?.stringValue ?? ""
                }
                #expect(states.sorted() == ["delivered", "delivered", "skipped"])
                #expect(!status.text.contains(hidden), "a skipped event does not show what it was about")
                // One AuditEvent per delivery names the subscriber and the report version.
                let audited = try await fixture.withDatabase { postgres in
                    try await postgres.query("SELECT event FROM audit_outbox WHERE event LIKE '%subscription notification%'").collect().count
                }
                #expect(audited == 2)
            }
        }
    }

    @Test func failuresBackOffThenErrorUntilTheOwnerResumes() async throws {
        let fixture = try await RecordsFixture.make("retry")
        let receiver = NotificationReceiver()
        receiver.answer(.serviceUnavailable)
        let fast = ["SUBSCRIPTION_RETRY_BASE_MS": "10", "SUBSCRIPTION_RETRY_MAX_MS": "40", "SUBSCRIPTION_MAX_FAILURES": "3"]
        try await receiver.serving { hook in
            try await fixture.app(fast).test(.router) { client in
                let people = try await People.make(client, fixture)
                let body = Self.subscription("DiagnosticReport?patient=\(people.mine)", endpoint: hook, content: "id-only")
                let id = try #require(try await client.fhir(.post, "/fhir/Subscription", token: people.doctor, body: body).id)
                _ = try await client.create("DiagnosticReport", Sample.report(patient: people.mine), token: people.tech)
                var subscription = try await client.fhir(.get, "/fhir/Subscription/\(id)", token: people.doctor)
                for _ in 0..<200 where subscription.json?["status"]?.stringValue != "error" {
                    try await Task.sleep(for: .milliseconds(100))
                    subscription = try await client.fhir(.get, "/fhir/Subscription/\(id)", token: people.doctor)
                }
                #expect(subscription.json?["status"]?.stringValue == "error")
                #expect(subscription.json?["error"]?.stringValue?.contains("answered 503") == true)
                #expect(receiver.received.isEmpty)

                receiver.answer(.ok)
                let resumed = try #require(subscription.json).serialized()
                let text = String(decoding: resumed, as: UTF8.self).replacingOccurrences(of: #""status":"error""#, with: #""status":"active""#)
                #expect(try await client.fhir(.put, "/fhir/Subscription/\(id)", token: people.doctor, body: text).status == .ok)
                let received = try await receiver.waitFor(1)
                #expect(received.count == 1 && received.first?.header("X-MedLedger-Event-Number") == "1")
                let bundle = try JSONParser.parse(try #require(received.first).body)
                #expect(bundle["entry"]?.arrayValue?.count == 2 && bundle["entry"]?.arrayValue?[1]["resource"] == nil)
            }
        }
    }

    /// The detached JWS checked as a receiver would: header, then the signature over
    /// `header.base64url(body)` with the JWKS key.
    static func verify(_ notification: NotificationReceiver.Received, key: JSONValue) throws -> Bool {
        let parts = try #require(notification.header("X-MedLedger-Signature")).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].isEmpty else { return false }
        let header = try JSONParser.parse(try #require(Base64.decodeLenient(parts[0])))
        guard header["alg"]?.stringValue == "EdDSA", header["kid"] == key["kid"] else { return false }
        let x = try #require(key["x"]?.stringValue)
        let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: try #require(Base64.decodeLenient(x)))
        let signature = try #require(Base64.decodeLenient(parts[2]))
        return publicKey.isValidSignature(signature, for: Array((parts[0] + "." + notification.body.base64URLString).utf8))
    }
}
