import Configuration
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO
import TestSupport
import Testing

@testable import Consent

/// The directory of a test: a fixed set of references that exist.
struct KnownReferences: Directory {
    var known: Set<String>

    func exists(_ reference: String, logger: Logger) async throws -> Bool { known.contains(reference) }
}

/// A consent service under test: its own database and token issuer, with tokens for each role.
struct ConsentFixture {
    let databaseURL: String
    let tokens: TestTokens

    static let base = "http://consent.test/fhir"
    static let known: Set<String> = ["Patient/p1", "Patient/p2", "Practitioner/d1", "Practitioner/d2", "Organization/o1"]

    static func make(_ name: String = "consent") async throws -> ConsentFixture {
        ConsentFixture(databaseURL: try await TestDatabase.create(prefix: name), tokens: try await TestTokens())
    }

    var variables: [String: String] {
        [
            "DATABASE_URL": databaseURL,
            "JWKS_URL": tokens.jwksURL.absoluteString,
            "CONSENT_URL": "http://consent.test",
            "MEDLEDGER_ENV": "development",
        ]
    }

    func app(_ extra: [String: String] = [:], known: Set<String> = ConsentFixture.known) async throws -> some ApplicationProtocol {
        try await Consent.buildApplication(reader: testConfig(variables.merging(extra) { $1 })) { _, _ in KnownReferences(known: known) }
    }

    func token(_ role: Role, fhirUser: String? = nil, scope: String? = nil) async throws -> String {
        try await tokens.token(
            role: role.rawValue, scope: scope ?? role.userScopes.joined(separator: " "), subject: UUID().uuidString.lowercased(), fhirUser: fhirUser)
    }

    /// The patient p1, the doctor d1, a receptionist, an EHR system of Organization/o1 and records (consent.decide).
    func patient(_ id: String = "p1") async throws -> String { try await token(.patient, fhirUser: "Patient/\(id)") }
    func doctor(_ id: String = "d1") async throws -> String { try await token(.doctor, fhirUser: "Practitioner/\(id)") }
    func receptionist() async throws -> String { try await token(.receptionist) }
    func ehr(_ organization: String = "o1") async throws -> String {
        try await token(.system, fhirUser: "Organization/\(organization)", scope: "system/Consent.rs")
    }
    func records() async throws -> String { try await token(.service, scope: Scope.consentDecide) }

    /// The audit outbox's events, oldest first.
    func auditEvents() async throws -> [JSONValue] {
        try await withPostgres(databaseURL) { client in
            var events: [JSONValue] = []
            for try await text in try await client.query("SELECT event FROM audit_outbox ORDER BY id", logger: testLogger).decode(String.self) {
                events.append(try JSONParser.parse(text))
            }
            return events
        }
    }

    /// Runs an SQL statement on the service's database (to move time along, e.g. expire a session).
    func execute(_ query: PostgresQuery) async throws {
        try await withPostgres(databaseURL) { client in _ = try await client.query(query, logger: testLogger) }
    }
}

extension TestClientProtocol {
    /// Creates a consent and returns its id (expects 201).
    func createConsent(_ body: JSONValue, token: String) async throws -> String {
        let answer = try await send(.post, "/fhir/Consent", token: token, body: body.serializedString)
        #expect(answer.status == .created, "create answered \(answer.status): \(answer.text)")
        return try #require(answer.id)
    }
}

enum Sample {
    static let scope = #"{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]}"#
    static let access = #"{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentaction","code":"access"}]}"#

    /// A consent MedLedger accepts: `patient` permits `actor` access to all reports (or one
    /// `report`, or one `category`) for `period`.
    static func consent(
        patient: String = "Patient/p1", actor: String = "Practitioner/d1", status: String = "active", start: String? = nil, end: String? = nil,
        report: String? = nil, category: String? = nil
    ) throws -> JSONValue {
        var period: [String] = []
        if let start { period.append(#""start":"\#(start)""#) }
        if let end { period.append(#""end":"\#(end)""#) }
        let periodPart = period.isEmpty ? "" : #","period":{\#(period.joined(separator: ","))}"#
        let dataPart = report.map { #","data":[{"meaning":"instance","reference":{"reference":"\#($0)"}}]"# } ?? ""
        let codePart = category.map { #","code":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"\#($0)"}]}]"# } ?? ""
        let text = #"""
            {"resourceType":"Consent","status":"\#(status)","scope":\#(scope),\#
            "category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"\#(patient)"},\#
            "dateTime":"2026-01-10T09:00:00Z",\#
            "policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},\#
            "provision":{"type":"permit"\#(periodPart),"actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},\#
            "reference":{"reference":"\#(actor)"}}],"action":[\#(access)]\#(dataPart)\#(codePart)}}
            """#
        return try JSONParser.parse(text)
    }
}

extension JSONValue {
    /// This object with the element at `path` replaced (nil: removed).
    func setting(_ path: [String], _ value: JSONValue?) -> JSONValue {
        guard let key = path.first else { return value ?? self }
        guard case .object(var members) = self else { return self }
        let index = members.firstIndex { $0.key == key }
        let replaced = path.count == 1 ? value : (index.map { members[$0].value } ?? .object([])).setting(Array(path.dropFirst()), value)
        switch (index, replaced) {
        case (let i?, let new?): members[i].value = new
        case (let i?, nil): members.remove(at: i)
        case (nil, let new?): members.append((key, new))
        case (nil, nil): break
        }
        return .object(members)
    }
}
