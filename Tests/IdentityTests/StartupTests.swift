import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Identity
import MedLedgerCore
import NIOCore
import TestSupport
import Testing

/// Configuration checks and what a restart keeps.
@Suite struct StartupTests {
    @Test func productionRefusesMissingOrWeakSecrets() async throws {
        let fixture = try await IdentityFixture.make("prodconfig")
        var production = fixture.variables
        production["MEDLEDGER_ENV"] = "production"
        production["BCRYPT_COST"] = "12"
        let cases: [([String: String?], String)] = [
            (["IDENTITY_KEK": nil], "IDENTITY_KEK is required"),
            (["IDENTITY_KEK": "c2hvcnQ="], "IDENTITY_KEK must be"),
            (["MEDLEDGER_ADMIN_PASSWORD": nil], "MEDLEDGER_ADMIN_PASSWORD is required"),
            (["MEDLEDGER_ADMIN_PASSWORD": "admin123"], "MEDLEDGER_ADMIN_PASSWORD is too weak"),
            (["BCRYPT_COST": "4"], "BCRYPT_COST=4 is too low"),
            (["BCRYPT_COST": "40"], "BCRYPT_COST=40"),
            (["IDENTITY_CLIENTS": "a:b:service"], "IDENTITY_CLIENTS"),
            (["IDENTITY_CLIENTS": "ledger:\(IdentityFixture.clientSecret):doctor:medledger/ledger.append"], "service or system"),
            (["IDENTITY_CLIENTS": "ledger:short:service:medledger/ledger.append"], "too short"),
            (["IDENTITY_CLIENTS": "ledger:\(IdentityFixture.clientSecret):service:user/Patient.r"], "not allowed"),
        ]
        for (changes, message) in cases {
            var variables = production
            for (key, value) in changes { variables[key] = value }
            do {
                _ = try await buildApplication(reader: testConfig(variables))
                Issue.record("started with \(changes)")
            } catch let error as ConfigError {
                #expect(error.message.contains(message), "\(error.message)")
            }
        }
    }

    @Test func restartsKeepKeysAccountsAndClients() async throws {
        let fixture = try await IdentityFixture.make("restart")
        let kid = try await fixture.app().test(.router) { client in
            try header(try await client.adminToken())["kid"]?.stringValue ?? ""
        }
        // Restarted with a changed client scope list and another admin password: the admin
        // exists already, so the password setting no longer matters; the client is updated.
        let changed = [
            "MEDLEDGER_ADMIN_PASSWORD": "An0ther-Adm1n-Pass",
            "IDENTITY_CLIENTS": "ledger-writer:\(IdentityFixture.clientSecret):service:medledger/audit.write",
        ]
        try await fixture.app(changed).test(.router) { client in
            let admin = try await client.adminToken()
            #expect(try header(admin)["kid"]?.stringValue == kid)
            let users = try json(try await client.request(.get, "/users?role=admin", token: admin))["users"]?.arrayValue ?? []
            #expect(users.count == 1)
            let service = try parseTokens(try await client.form("grant_type=client_credentials", headers: [.authorization: TokenGrantTests.basic]))
            #expect(service.scope == "medledger/audit.write")
        }
        // Another key-encryption key cannot open the stored signing keys: refuse to start.
        var wrongKEK = fixture.variables
        wrongKEK["IDENTITY_KEK"] = Array(repeating: UInt8(7), count: 32).base64String
        let refusal = await #expect(throws: (any Error).self) {
            try await buildApplication(reader: testConfig(wrongKEK)).test(.router) { _ in }
        }
        #expect(String(describing: refusal).contains("IDENTITY_KEK does not open"), "\(String(describing: refusal))")
    }

    @Test func discoveryDocumentsDescribeWhatWorks() async throws {
        let fixture = try await IdentityFixture.make("discovery")
        try await fixture.app().test(.router) { client in
            let openID = try json(try await client.request(.get, "/.well-known/openid-configuration"))
            let smart = try json(try await client.request(.get, "/.well-known/smart-configuration"))
            for document in [openID, smart] {
                #expect(document["issuer"]?.stringValue == IdentityFixture.issuer)
                #expect(document["token_endpoint"]?.stringValue == IdentityFixture.issuer + "/auth/token")
                #expect(document["jwks_uri"]?.stringValue == IdentityFixture.issuer + "/.well-known/jwks.json")
                #expect(document["grant_types_supported"]?.arrayValue?.compactMap(\.stringValue) == ["password", "client_credentials", "refresh_token"])
                let scopes = document["scopes_supported"]?.arrayValue?.compactMap(\.stringValue) ?? []
                for role in Role.allCases { #expect(Set(role.userScopes).isSubset(of: scopes)) }
            }
            #expect(smart["capabilities"]?.arrayValue?.contains(.string("permission-v2")) == true)
            #expect(try await client.request(.get, "/openapi.yaml").status == .ok)
            #expect(try await client.request(.get, "/health/ready").status == .ok)
        }
    }
}
