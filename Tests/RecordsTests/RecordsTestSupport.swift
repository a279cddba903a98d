import Configuration
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO
import Records
import TestSupport
import Testing

/// A records service under test: its own database, KEK and token issuer, with tokens for
/// each role of the design guide's table.
struct RecordsFixture {
    let databaseURL: String
    let tokens: TestTokens
    let kek: String

    static func make(_ name: String = "records") async throws -> RecordsFixture {
        RecordsFixture(
            databaseURL: try await TestDatabase.create(prefix: name),
            tokens: try await TestTokens(),
            kek: Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        )
    }

    var variables: [String: String] {
        [
            "DATABASE_URL": databaseURL,
            "JWKS_URL": tokens.jwksURL.absoluteString,
            "RECORDS_KEKS": "k1:\(kek)",
            "RECORDS_URL": "http://records.test",
            "MEDLEDGER_ENV": "development",
            "BINARY_MAX_BYTES": "300000",
        ]
    }

    func app(_ extra: [String: String] = [:]) async throws -> some ApplicationProtocol {
        try await buildApplication(reader: testConfig(variables.merging(extra) { $1 }))
    }

    func token(_ role: Role, fhirUser: String? = nil, trusted: Bool? = nil, scope: String? = nil) async throws -> String {
        let scope = scope ?? role.userScopes.joined(separator: " ")
        return try await tokens.token(role: role.rawValue, scope: scope, subject: UUID().uuidString.lowercased(), fhirUser: fhirUser, trusted: trusted)
    }

    /// Runs `body` with a client of the records database.
    func withDatabase<T: Sendable>(_ body: (PostgresClient) async throws -> T) async throws -> T {
        let client = PostgresClient(configuration: try DatabaseConfig(url: databaseURL).clientConfiguration)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}

/// The answer of a FHIR request: status, headers and the body parsed as JSON (nil if empty).
struct FHIRAnswer {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var text: String
    var json: JSONValue? { try? JSONParser.parse(text) }
    var id: String? { json?["id"]?.stringValue }
    var total: Int? { json?["total"].flatMap { if case .number(let n) = $0 { Int(n) } else { nil } } }
    var entryIDs: [String] { (json?["entry"]?.arrayValue ?? []).compactMap { $0["resource"]?["id"]?.stringValue } }
}

extension TestClientProtocol {
    func fhir(
        _ method: HTTPRequest.Method, _ uri: String, token: String?, body: String? = nil, headers extra: HTTPFields = [:]
    ) async throws -> FHIRAnswer {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil, headers[.contentType] == nil { headers[.contentType] = "application/fhir+json" }
        let response = try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        return FHIRAnswer(status: response.status, headers: response.headers, text: String(buffer: response.body))
    }

    /// Creates a resource and returns its id (expects 201).
    func create(_ type: String, _ body: String, token: String) async throws -> String {
        let answer = try await fhir(.post, "/fhir/\(type)", token: token, body: body)
        #expect(answer.status == .created, "create \(type) answered \(answer.status): \(answer.text)")
        return try #require(answer.id)
    }
}

enum Sample {
    static func practitioner(_ family: String = "House") -> String {
        #"{"resourceType":"Practitioner","name":[{"family":"\#(family)","given":["Greg"]}]}"#
    }

    static func patient(_ family: String, gp: String? = nil, identifier: String? = nil) -> String {
        let gpPart = gp.map { #","generalPractitioner":[{"reference":"Practitioner/\#($0)"}]"# } ?? ""
        let idPart = identifier.map { #","identifier":[{"system":"urn:mrn","value":"\#($0)"}]"# } ?? ""
        return #"{"resourceType":"Patient","name":[{"family":"\#(family)","given":["Zoë"]}],"gender":"female","birthDate":"1980-05-17"\#(gpPart)\#(idPart)}"#
    }

    static func report(patient: String, status: String = "preliminary", code: String = "58410-2", conclusion: String = "normal", extra: String = "")
        -> String
    {
        #"""
        {"resourceType":"DiagnosticReport","status":"\#(status)","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"LAB"}]}],\#
        "code":{"coding":[{"system":"http://loinc.org","code":"\#(code)"}]},"subject":{"reference":"Patient/\#(patient)"},\#
        "effectiveDateTime":"2024-05-01T10:00:00Z","issued":"2024-05-02T09:30:00.000Z","conclusion":"\#(conclusion)"\#(extra)}
        """#
    }
}

/// Two doctors, each with one patient, and the other roles, in a fresh records database.
struct People {
    var admin, reception, tech, doctor, otherDoctor, patient: String
    var house, mine, theirs: String

    static func make(_ client: some TestClientProtocol, _ fixture: RecordsFixture) async throws -> People {
        let admin = try await fixture.token(.admin)
        let reception = try await fixture.token(.receptionist)
        let house = try await client.create("Practitioner", Sample.practitioner("House"), token: admin)
        let wilson = try await client.create("Practitioner", Sample.practitioner("Wilson"), token: admin)
        let mine = try await client.create("Patient", Sample.patient("Mine", gp: house), token: reception)
        let theirs = try await client.create("Patient", Sample.patient("Theirs", gp: wilson), token: reception)
        return People(
            admin: admin, reception: reception, tech: try await fixture.token(.technologist, fhirUser: "Practitioner/tech-1"),
            doctor: try await fixture.token(.doctor, fhirUser: "Practitioner/\(house)"),
            otherDoctor: try await fixture.token(.doctor, fhirUser: "Practitioner/\(wilson)"),
            patient: try await fixture.token(.patient, fhirUser: "Patient/\(mine)"), house: house, mine: mine, theirs: theirs)
    }
}
