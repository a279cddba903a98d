import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import PostgresNIO
import TestSupport
import Testing

/// What identity's AuditEvents say beyond logins: changes the configuration makes (clients of
/// `IDENTITY_CLIENTS`, the bootstrap admin) and the patient an account change concerns.
@Suite struct AuditEventTests {
    static func events(_ fixture: IdentityFixture) async throws -> [JSONValue] {
        try await withPostgres(fixture.databaseURL) { postgres in
            var events: [JSONValue] = []
            for try await text in try await postgres.query("SELECT event FROM audit_outbox ORDER BY id", logger: testLogger).decode(String.self) {
                events.append(try JSONParser.parse(text))
            }
            return events
        }
    }

    /// (event kind, the configuration setting or account that acted, what it acted on)
    static func summary(_ event: JSONValue) -> (kind: String?, agent: String?, target: String?) {
        let entity = event["entity"]?.arrayValue?.first
        return (
            LoginSecurityTests.kind(of: event), event["agent"]?.arrayValue?.first?["altId"]?.stringValue,
            entity?["what"]?["identifier"]?["value"]?.stringValue
        )
    }

    @Test func configuredClientsAndTheBootstrapAdminAreAuditedWhenTheyChange() async throws {
        let fixture = try await IdentityFixture.make("auditconfig")
        try await fixture.app().test(.router) { _ in }
        let changed = ["IDENTITY_CLIENTS": "ledger-writer:\(IdentityFixture.clientSecret):service:medledger/audit.write"]
        try await fixture.app(changed).test(.router) { _ in }
        try await fixture.app(changed).test(.router) { _ in }  // nothing changes: nothing to audit
        let events = try await Self.events(fixture).map(Self.summary)
        #expect(events.map(\.kind) == ["client-created", "account-created", "client-changed"])
        #expect(events.map(\.agent) == ["IDENTITY_CLIENTS", "MEDLEDGER_ADMIN_USER", "IDENTITY_CLIENTS"])
        #expect(events[0].target == "ledger-writer" && events[2].target == "ledger-writer")
    }

    @Test func accountChangesNameThePatientConcerned() async throws {
        let fixture = try await IdentityFixture.make("auditpatient")
        try await fixture.app().test(.router) { client in
            let admin = try await client.adminToken()
            _ = try await client.createUser("desk", role: "receptionist", by: admin)
            let receptionist = try await client.login("desk", "Correct-Horse-9!").access
            let patient = try await client.createUser("pat", role: "patient", fhirUser: "Patient/p1", by: receptionist)
            #expect(try await client.request(.patch, "/users/\(patient)", token: receptionist, json: #"{"name":"Pat"}"#).status == .ok)
        }
        let events = try await Self.events(fixture).filter { LoginSecurityTests.kind(of: $0)?.hasPrefix("account-") == true }
        let patients = events.map { event in
            (event["entity"]?.arrayValue ?? []).filter { $0["role"]?["code"]?.stringValue == "1" }
                .compactMap { $0["what"]?["reference"]?.stringValue }
        }
        // The admin and the receptionist are no patients; the patient's creation and change name them.
        #expect(patients == [[], [], ["Patient/p1"], ["Patient/p1"]])
    }
}
