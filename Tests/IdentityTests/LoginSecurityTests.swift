import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import PostgresNIO
import TestSupport
import Testing

/// Lockout, throttling, the generic failure answer, and the audit outbox behind them.
@Suite struct LoginSecurityTests {
    @Test func repeatedFailuresLockTheAccountWithoutRevealingIt() async throws {
        let fixture = try await IdentityFixture.make("lockout")
        try await fixture.app(["LOCKOUT_THRESHOLD": "5", "LOCKOUT_SECONDS": "600"]).test(.router) { client in
            let admin = try await client.adminToken()
            let id = try await client.createUser("victim", role: "doctor", by: admin)
            for _ in 0..<5 {
                expectProblem(
                    try await client.request(.post, "/auth/login", json: #"{"username":"victim","password":"Wrong-Guess-123"}"#), .unauthorized, "guess")
            }
            // A name that cannot exist (NUL cannot even be stored) is an unknown account, not a database failure.
            expectProblem(
                try await client.request(.post, "/auth/login", json: #"{"username":"vic\u0000tim","password":"Wrong-Guess-123"}"#), .unauthorized, "NUL")
            let locked = try await client.request(.post, "/auth/login", json: #"{"username":"victim","password":"Correct-Horse-9!"}"#)
            let unknown = try await client.request(.post, "/auth/login", json: #"{"username":"nobody-here","password":"Correct-Horse-9!"}"#)
            expectProblem(locked, .unauthorized, "right password, locked account")
            #expect(try json(locked)["detail"] == json(unknown)["detail"], "a locked account answers like an unknown one")
            #expect(try json(locked)["title"] == json(unknown)["title"])
            try expectOAuthError(try await client.form("grant_type=password&username=victim&password=Correct-Horse-9!"), .badRequest, "invalid_grant")

            let account = try json(try await client.request(.get, "/users/\(id)", token: admin))
            #expect(account["lockedUntil"]?.stringValue != nil)
            #expect(try await client.request(.patch, "/users/\(id)", token: admin, json: #"{"unlock":true}"#).status == .ok)
            _ = try await client.login("victim", "Correct-Horse-9!")

            // The login history: AuditEvents from the outbox, newest first.
            let history = try await client.request(.get, "/users/\(id)/login-history", token: admin)
            #expect(history.headers[.contentType] == "application/fhir+json")
            let bundle = try json(history)
            #expect(bundle["resourceType"]?.stringValue == "Bundle" && bundle["type"]?.stringValue == "searchset")
            let events = (bundle["entry"]?.arrayValue ?? []).compactMap { $0["resource"] }
            let kinds = events.compactMap { Self.kind(of: $0) }
            #expect(kinds.first == "login")
            #expect(kinds.filter { $0 == "login-failed" }.count == 7)  // 5 guesses, the locked attempt, the password grant
            #expect(kinds.contains("lockout"))
            #expect(bundle["total"] == .number(String(kinds.count)))
            let lockout = events.first { Self.kind(of: $0) == "lockout" }
            #expect(lockout?["outcome"]?.stringValue == "8")
            #expect(lockout?["type"]?["code"]?.stringValue == "110114")
            #expect(events.allSatisfy { $0["resourceType"]?.stringValue == "AuditEvent" && $0["recorded"]?.stringValue != nil })

            let doctor = try await client.login("victim", "Correct-Horse-9!").access
            expectProblem(try await client.request(.get, "/users/\(id)/login-history", token: doctor), .forbidden, "a doctor reads login history")

            // Every event went to the outbox, undelivered until audit exists; no secret is in it.
            let rows = try await withPostgres(fixture.databaseURL) { postgres in
                var rows: [(String, String)] = []
                for try await row in try await postgres.query(
                    "SELECT kind, event FROM audit_outbox WHERE delivered_at IS NULL ORDER BY id", logger: testLogger
                ).decode((String, String).self) {
                    rows.append(row)
                }
                return rows
            }
            let outboxKinds = Set(rows.map(\.0))
            #expect(outboxKinds.isSuperset(of: ["account-created", "login", "login-failed", "lockout", "account-changed"]))
            #expect(!rows.contains { $0.1.contains("Correct-Horse-9!") || $0.1.contains("Wrong-Guess-123") || $0.1.contains("$2") })
        }
    }

    @Test func oneAddressIsThrottledAcrossAccounts() async throws {
        let fixture = try await IdentityFixture.make("throttle")
        try await fixture.app(["LOGIN_ADDRESS_LIMIT": "3", "LOGIN_ADDRESS_WINDOW_SECONDS": "60"]).test(.router) { client in
            for n in 0..<3 {
                expectProblem(
                    try await client.request(.post, "/auth/login", json: #"{"username":"user\#(n)","password":"Whatever-123!"}"#), .unauthorized, "guess \(n)")
            }
            let throttled = try await client.request(.post, "/auth/login", json: #"{"username":"admin","password":"\#(IdentityFixture.adminPassword)"}"#)
            expectProblem(throttled, .tooManyRequests, "the right password after the limit")
            #expect(Int(throttled.headers[.retryAfter] ?? "") ?? 0 > 0)
            let viaToken = try await client.form("grant_type=password&username=admin&password=\(IdentityFixture.adminPassword)")
            try expectOAuthError(viaToken, .tooManyRequests, "invalid_request")
            #expect(viaToken.headers[.retryAfter] != nil)
            // Clients authenticate with secrets, not passwords: they are not throttled by logins.
            _ = try parseTokens(try await client.form("grant_type=client_credentials", headers: [.authorization: TokenGrantTests.basic]))
        }
    }

    static func kind(of event: JSONValue) -> String? {
        event["entity"]?.arrayValue?.first?["detail"]?.arrayValue?.first { $0["type"]?.stringValue == "event" }?["valueString"]?.stringValue
    }
}
