import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import PostgresNIO
import TestSupport
import Testing

/// Every grant of the token endpoint, refresh rotation with reuse detection, logout, and the
/// RFC 6749 error answers.
@Suite struct TokenGrantTests {
    static let basic = "Basic " + Array("ledger-writer:\(IdentityFixture.clientSecret)".utf8).base64String

    @Test func loginIssuesTheContractsClaims() async throws {
        let fixture = try await IdentityFixture.make("claims")
        try await fixture.app().test(.router) { client in
            let response = try await client.request(.post, "/auth/login", json: #"{"username":"ADMIN","password":"\#(IdentityFixture.adminPassword)"}"#)
            #expect(response.headers[.cacheControl] == "no-store")
            let body = try json(response)
            #expect(body["token_type"]?.stringValue == "Bearer")
            #expect(body["expires_in"] == .number("900"))
            let token = body["access_token"]?.stringValue ?? ""
            let payload = try claims(token)
            #expect(payload["iss"]?.stringValue == IdentityFixture.issuer)
            #expect(payload["aud"]?.stringValue == "medledger" || payload["aud"]?.arrayValue == [.string("medledger")])
            #expect(payload["role"]?.stringValue == "admin")
            #expect(payload["sid"]?.stringValue != nil)
            #expect(payload["jti"]?.stringValue != nil)
            #expect(payload["scope"]?.stringValue == Role.admin.userScopes.joined(separator: " "))
            if case .number(let exp)? = payload["exp"], case .number(let iat)? = payload["iat"] { #expect(Int(exp)! - Int(iat)! == 900) }
            let me = try json(try await client.request(.get, "/users/me", token: token))
            #expect(payload["sub"]?.stringValue == me["id"]?.stringValue)
            let head = try header(token)
            #expect(head["alg"]?.stringValue == "EdDSA")
            let jwks = try json(try await client.request(.get, "/.well-known/jwks.json"))
            let keys = jwks["keys"]?.arrayValue ?? []
            #expect(keys.count == 1)
            #expect(keys.first?["kid"] == head["kid"])
            #expect(keys.first?["crv"]?.stringValue == "Ed25519")
            #expect(keys.first?["d"] == nil, "the JWKS must not carry private parts")
        }
    }

    @Test func passwordAndClientCredentialsGrants() async throws {
        let fixture = try await IdentityFixture.make("grants")
        try await fixture.app().test(.router) { client in
            let password = try parseTokens(try await client.form("grant_type=password&username=admin&password=\(IdentityFixture.adminPassword)"))
            #expect(password.refresh != nil)
            let narrowed = try parseTokens(
                try await client.form("grant_type=password&username=admin&password=\(IdentityFixture.adminPassword)&scope=medledger%2Fusers.manage"))
            #expect(narrowed.scope == Scope.manageUsers)
            try expectOAuthError(
                try await client.form("grant_type=password&username=admin&password=\(IdentityFixture.adminPassword)&scope=patient%2FPatient.r"),
                .badRequest, "invalid_scope")
            try expectOAuthError(try await client.form("grant_type=password&username=admin&password=wrong"), .badRequest, "invalid_grant")
            try expectOAuthError(try await client.form("grant_type=password&username=admin"), .badRequest, "invalid_request")

            let viaBasic = try parseTokens(try await client.form("grant_type=client_credentials", headers: [.authorization: Self.basic]))
            #expect(viaBasic.refresh == nil)
            let payload = try claims(viaBasic.access)
            #expect(payload["sub"]?.stringValue == "ledger-writer")
            #expect(payload["role"]?.stringValue == "service")
            #expect(payload["sid"] == nil)
            #expect(payload["scope"]?.stringValue == "medledger/ledger.append medledger/audit.write")
            let viaPost = try parseTokens(
                try await client.form("grant_type=client_credentials&client_id=ledger-writer&client_secret=\(IdentityFixture.clientSecret)&scope=medledger%2Faudit.write"))
            #expect(viaPost.scope == "medledger/audit.write")

            let wrongSecret = try await client.form(
                "grant_type=client_credentials", headers: [.authorization: "Basic " + Array("ledger-writer:nope".utf8).base64String])
            try expectOAuthError(wrongSecret, .unauthorized, "invalid_client")
            #expect(wrongSecret.headers[.wwwAuthenticate]?.hasPrefix("Basic") == true)
            try expectOAuthError(try await client.form("grant_type=client_credentials&client_id=nobody&client_secret=x"), .unauthorized, "invalid_client")
            try expectOAuthError(try await client.form("grant_type=client_credentials"), .unauthorized, "invalid_client")
            try expectOAuthError(
                try await client.form("grant_type=client_credentials&client_id=ledger-writer&client_secret=x", headers: [.authorization: Self.basic]),
                .badRequest, "invalid_request")
            try expectOAuthError(try await client.form("grant_type=client_credentials", headers: [.authorization: "Bearer abc"]), .unauthorized, "invalid_client")
        }
    }

    @Test func registeredClientsCarryTheirRegistration() async throws {
        let fixture = try await IdentityFixture.make("clients")
        try await fixture.app().test(.router) { client in
            let admin = try await client.adminToken()
            let created = try await client.request(
                .post, "/clients", token: admin,
                json: #"{"clientId":"ehr-west","name":"EHR West","role":"system","scopes":["system/DiagnosticReport.rs","system/Patient.r"],"organization":"Organization/west","trusted":true}"#)
            #expect(created.status == .created, "\(String(buffer: created.body))")
            #expect(created.headers[.location] == "/clients/ehr-west")
            let secret = try json(created)["clientSecret"]?.stringValue ?? ""
            #expect(secret.count == 43)
            let fetched = try await client.request(.get, "/clients/ehr-west", token: admin)
            #expect(!String(buffer: fetched.body).contains(secret))
            #expect(try json(fetched)["clientSecret"] == nil)
            let basic = "Basic " + Array("ehr-west:\(secret)".utf8).base64String
            let token = try parseTokens(try await client.form("grant_type=client_credentials", headers: [.authorization: basic]))
            let payload = try claims(token.access)
            #expect(payload["fhirUser"]?.stringValue == "Organization/west")
            #expect(payload["trusted"] == .bool(true))
            #expect(payload["role"]?.stringValue == "system")

            let rotated = try await client.request(.post, "/clients/ehr-west/secret", token: admin)
            let newSecret = try json(rotated)["clientSecret"]?.stringValue ?? ""
            #expect(newSecret != secret && newSecret.count == 43)
            try expectOAuthError(try await client.form("grant_type=client_credentials", headers: [.authorization: basic]), .unauthorized, "invalid_client")
            let newBasic = "Basic " + Array("ehr-west:\(newSecret)".utf8).base64String
            _ = try parseTokens(try await client.form("grant_type=client_credentials", headers: [.authorization: newBasic]))
            #expect(try await client.request(.patch, "/clients/ehr-west", token: admin, json: #"{"disabled":true}"#).status == .ok)
            try expectOAuthError(try await client.form("grant_type=client_credentials", headers: [.authorization: newBasic]), .badRequest, "unauthorized_client")

            let invalid: [(String, HTTPResponse.Status, String)] = [
                (#"{"name":"X","role":"system","scopes":["user/Patient.r"]}"#, .unprocessableContent, "user scope for a system"),
                (#"{"name":"X","role":"system","scopes":["system/Patient.rw"]}"#, .unprocessableContent, "SMART v1 permissions"),
                (#"{"name":"X","role":"system","scopes":["system/Patient.sr"]}"#, .unprocessableContent, "permissions out of order"),
                (#"{"name":"X","role":"system","scopes":["medledger/ledger.append"]}"#, .unprocessableContent, "service scope for a system"),
                (#"{"name":"X","role":"doctor","scopes":["system/Patient.r"]}"#, .unprocessableContent, "user role for a client"),
                (#"{"name":"X","role":"system","scopes":[]}"#, .unprocessableContent, "no scopes"),
                (#"{"name":"X","role":"system","scopes":["system/*.rs"],"organization":"Practitioner/1"}"#, .unprocessableContent, "organization"),
                (#"{"clientId":"ehr-west","name":"X","role":"system","scopes":["system/*.rs"]}"#, .conflict, "id taken"),
                (#"{"clientId":"Bad Id","name":"X","role":"system","scopes":["system/*.rs"]}"#, .unprocessableContent, "bad id"),
                (#"{"name":"X","role":"system"}"#, .badRequest, "missing scopes"),
            ]
            for (body, status, what) in invalid {
                expectProblem(try await client.request(.post, "/clients", token: admin, json: body), status, what)
            }
            expectProblem(
                try await client.request(.patch, "/clients/ledger-writer", token: admin, json: #"{"trusted":true}"#), .conflict, "config-managed client")
            let list = try json(try await client.request(.get, "/clients", token: admin))["clients"]?.arrayValue ?? []
            #expect(Set(list.compactMap { $0["clientId"]?.stringValue }) == ["ehr-west", "ledger-writer"])
            #expect(list.first { $0["clientId"]?.stringValue == "ledger-writer" }?["managedBy"]?.stringValue == "config")
        }
    }

    @Test func refreshTokensRotateAndReuseEndsTheSession() async throws {
        let fixture = try await IdentityFixture.make("refresh")
        try await fixture.app().test(.router) { client in
            let first = try await client.login("admin", IdentityFixture.adminPassword)
            let second = try parseTokens(try await client.form("grant_type=refresh_token&refresh_token=\(first.refresh!)"))
            #expect(second.refresh != nil && second.refresh != first.refresh)
            #expect(try claims(second.access)["sid"] == claims(first.access)["sid"])
            let third = try parseTokens(try await client.form("grant_type=refresh_token&refresh_token=\(second.refresh!)"))
            // Replaying an old token ends the session: the newest refresh token dies with it.
            try expectOAuthError(try await client.form("grant_type=refresh_token&refresh_token=\(first.refresh!)"), .badRequest, "invalid_grant")
            try expectOAuthError(try await client.form("grant_type=refresh_token&refresh_token=\(third.refresh!)"), .badRequest, "invalid_grant")
            expectProblem(try await client.request(.get, "/users/me", token: third.access), .unauthorized, "token of an ended session")
            try expectOAuthError(try await client.form("grant_type=refresh_token&refresh_token=unknown"), .badRequest, "invalid_grant")
            try expectOAuthError(try await client.form("grant_type=refresh_token"), .badRequest, "invalid_request")

            // An expired refresh token is refused too.
            let fresh = try await client.login("admin", IdentityFixture.adminPassword)
            _ = try await withPostgres(fixture.databaseURL) { postgres in
                try await postgres.query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL", logger: testLogger)
            }
            try expectOAuthError(try await client.form("grant_type=refresh_token&refresh_token=\(fresh.refresh!)"), .badRequest, "invalid_grant")
        }
    }

    @Test func logoutEndsTheSession() async throws {
        let fixture = try await IdentityFixture.make("logout")
        try await fixture.app().test(.router) { client in
            let tokens = try await client.login("admin", IdentityFixture.adminPassword)
            #expect(try await client.request(.get, "/users/me", token: tokens.access).status == .ok)
            #expect(try await client.request(.post, "/auth/logout", token: tokens.access).status == .noContent)
            expectProblem(try await client.request(.get, "/users/me", token: tokens.access), .unauthorized, "after logout")
            try expectOAuthError(try await client.form("grant_type=refresh_token&refresh_token=\(tokens.refresh!)"), .badRequest, "invalid_grant")
            expectProblem(try await client.request(.post, "/auth/logout"), .unauthorized, "logout without a token")
            let service = try parseTokens(try await client.form("grant_type=client_credentials", headers: [.authorization: Self.basic]))
            #expect(try await client.request(.post, "/auth/logout", token: service.access).status == .noContent)
        }
    }

    @Test func badTokenRequestsGetRFC6749Errors() async throws {
        let fixture = try await IdentityFixture.make("badtoken")
        try await fixture.app().test(.router) { client in
            let cases: [(String, HTTPFields, HTTPResponse.Status, String)] = [
                ("grant_type=client_credentials", [.contentType: "application/json"], .badRequest, "invalid_request"),
                ("grant_type=%zz", [:], .badRequest, "invalid_request"),
                ("grant_type=password&grant_type=password", [:], .badRequest, "invalid_request"),
                ("username=admin", [:], .badRequest, "invalid_request"),
                ("grant_type=authorization_code&code=x", [:], .badRequest, "unsupported_grant_type"),
                ("grant_type=password&username=admin&password=\(String(repeating: "x", count: 5000))", [:], .badRequest, "invalid_request"),
            ]
            for (body, headers, status, error) in cases {
                try expectOAuthError(try await client.form(body, headers: headers), status, error)
            }
            let huge = try await client.form("grant_type=password&username=" + String(repeating: "a", count: 100_000))
            try expectOAuthError(huge, .badRequest, "invalid_request")

            let loginCases: [(String, HTTPFields, HTTPResponse.Status, String)] = [
                ("{", [:], .badRequest, "malformed JSON"),
                (#"{"username":"admin"}"#, [:], .badRequest, "missing password"),
                (#"{"username":"admin","password":"x","extra":1}"#, [:], .badRequest, "unknown member"),
                (#"{"username":["admin"],"password":"x"}"#, [:], .badRequest, "array username"),
                ("username=admin&password=x", [.contentType: "application/x-www-form-urlencoded"], .unsupportedMediaType, "form body"),
            ]
            for (body, headers, status, what) in loginCases {
                expectProblem(try await client.request(.post, "/auth/login", json: body, headers: headers), status, what)
            }
        }
    }
}
