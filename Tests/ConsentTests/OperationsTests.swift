import Configuration
import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import TestSupport
import Testing

@testable import Consent

@Suite struct OperationsTests {
    @Test func publicEndpointsAndPublishedContract() async throws {
        let fixture = try await ConsentFixture.make("ops")
        try await fixture.app().test(.router) { client in
            for path in ["/health/live", "/health/ready", "/metrics", "/openapi.yaml"] {
                #expect(try await client.send(.get, path, token: nil).status == .ok, "\(path)")
            }
            let served = try await client.send(.get, "/openapi.yaml", token: nil).text
            #expect(served == (try String(contentsOfFile: repositoryFile("openapi/consent.yaml"), encoding: .utf8)))

            let metadata = try await client.send(.get, "/fhir/metadata", token: nil)
            #expect(metadata.status == .ok && metadata.contentType?.hasPrefix("application/fhir+json") == true)
            let capability = try #require(metadata.json)
            #expect(capability["resourceType"]?.stringValue == "CapabilityStatement" && capability["fhirVersion"]?.stringValue == "4.0.1")
            #expect(capability["kind"]?.stringValue == "instance")
            let rest = try #require(capability["rest"]?.arrayValue?.first)
            #expect(rest["security"]?["service"]?.arrayValue?.first?["coding"]?.arrayValue?.first?["code"]?.stringValue == "SMART-on-FHIR")
            let consent = try #require(rest["resource"]?.arrayValue?.first)
            #expect(consent["type"]?.stringValue == "Consent" && consent["versioning"]?.stringValue == "versioned")
            #expect(consent["updateCreate"] == .bool(false) && consent["conditionalCreate"] == .bool(false) && consent["readHistory"] == .bool(true))
            let interactions = Set(consent["interaction"]?.arrayValue?.compactMap { $0["code"]?.stringValue } ?? [])
            #expect(interactions == ["read", "vread", "update", "delete", "history-instance", "create", "search-type"])
            let parameters = consent["searchParam"]?.arrayValue?.compactMap { p in
                p["name"]?.stringValue.map { "\($0):\(p["type"]?.stringValue ?? "")" }
            }
            #expect(
                Set(parameters ?? []) == ["patient:reference", "actor:reference", "status:token", "period:date", "_id:token", "_lastUpdated:date"])
            #expect(try await client.send(.post, "/fhir/metadata", token: nil).status == .methodNotAllowed)
            #expect(try await client.send(.get, "/fhir/Consent", token: nil).status == .unauthorized)
            #expect(try await client.send(.get, "/break-glass", token: nil).status == .unauthorized)
        }
    }

    /// With service credentials, lookups go to records and identity; when they cannot be
    /// reached, a write is a 503 (retry later), never a 500 or a consent stored unchecked.
    @Test func unreachablePeersAreA503() async throws {
        let fixture = try await ConsentFixture.make("peers")
        let closed = "http://127.0.0.1:9"
        let variables = fixture.variables.merging(
            [
                "OAUTH_CLIENT_ID": "consent", "OAUTH_CLIENT_SECRET": "not-used", "RECORDS_URL": closed, "IDENTITY_URL": closed,
                "JWKS_URL": fixture.tokens.jwksURL.absoluteString, "IDENTITY_ISSUER": TestTokens.issuer,
            ]) { $1 }
        try await Consent.buildApplication(reader: testConfig(variables)).test(.router) { client in
            let patient = try await fixture.patient()
            let answer = try await client.send(.post, "/fhir/Consent", token: patient, body: try Sample.consent().serializedString)
            #expect(answer.status == .serviceUnavailable, "\(answer.text)")
            #expect(answer.json?["resourceType"]?.stringValue == "OperationOutcome")
            let breakGlass = try await client.send(
                .post, "/break-glass", token: try await fixture.doctor(), body: #"{"patient":"Patient/p1","reason":"\#(BreakGlassTests.reason)"}"#)
            #expect(breakGlass.status == .serviceUnavailable && breakGlass.contentType == "application/problem+json")
        }
        #expect(try await fixture.auditEvents().isEmpty)
    }

    @Test func productionNeedsServiceCredentials() async throws {
        let fixture = try await ConsentFixture.make("prodconfig")
        let variables = fixture.variables.merging(["MEDLEDGER_ENV": "production", "DATABASE_URL": "postgres://u:p@127.0.0.1:1/consent"]) { $1 }
        await #expect(throws: ConfigError.self) { _ = try await Consent.buildApplication(reader: testConfig(variables)) }
        for (name, value) in [("BREAK_GLASS_MINUTES", "0"), ("BREAK_GLASS_MINUTES", "1441"), ("CONSENT_MAX_AGE", "61"), ("CONSENT_MAX_AGE", "x")] {
            await #expect(throws: ConfigError.self, "\(name)=\(value)") { _ = try await fixture.app([name: value]) }
        }
    }
}
