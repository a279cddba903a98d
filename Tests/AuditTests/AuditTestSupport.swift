import Configuration
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MedLedgerCore
import PostgresNIO
import TestSupport
import Testing

@testable import Audit

/// An audit service under test: its own database and token issuer, with tokens for each role.
struct AuditFixture {
    let databaseURL: String
    let tokens: TestTokens

    static let base = "http://audit.test/fhir"

    static func make(_ name: String = "audit") async throws -> AuditFixture {
        AuditFixture(databaseURL: try await TestDatabase.create(prefix: name), tokens: try await TestTokens())
    }

    var variables: [String: String] {
        [
            "DATABASE_URL": databaseURL,
            "JWKS_URL": tokens.jwksURL.absoluteString,
            "AUDIT_URL": "http://audit.test",
            "MEDLEDGER_ENV": "development",
        ]
    }

    func app(_ extra: [String: String] = [:]) async throws -> some ApplicationProtocol {
        try await Audit.buildApplication(reader: testConfig(variables.merging(extra) { $1 }))
    }

    func token(_ role: Role, fhirUser: String? = nil, scope: String? = nil) async throws -> String {
        try await tokens.token(
            role: role.rawValue, scope: scope ?? role.userScopes.joined(separator: " "), subject: UUID().uuidString.lowercased(), fhirUser: fhirUser)
    }

    func admin() async throws -> String { try await token(.admin) }
    func patient(_ id: String = "p1") async throws -> String { try await token(.patient, fhirUser: "Patient/\(id)") }
    func doctor(_ id: String = "d1") async throws -> String { try await token(.doctor, fhirUser: "Practitioner/\(id)") }
    /// A MedLedger service delivering its outbox.
    func writer() async throws -> String { try await token(.service, scope: Scope.auditWrite) }

    /// Runs an SQL statement on the service's database (e.g. to tamper with a row).
    func execute(_ query: PostgresQuery) async throws {
        try await withPostgres(databaseURL) { client in _ = try await client.query(query, logger: testLogger) }
    }
}
