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

            // Every event waits in the outbox (nothing delivers without service credentials); no secret is in it.
            let events = try await withPostgres(fixture.databaseURL) { postgres in
                var events: [JSONValue] = []
                for try await text in try await postgres.query("SELECT event FROM audit_outbox ORDER BY id", logger: testLogger).decode(String.self) {
                    #expect(!text.contains("Correct-Horse-9!") && !text.contains("Wrong-Guess-123") && !text.contains("$2"))
                    events.append(try JSONParser.parse(text))
                }
                return events
            }
            let kinds = Set(events.compactMap { Self.kind(of: $0) })
            #expect(kinds.isSuperset(of: ["account-created", "login", "login-failed", "lockout", "account-changed"]))
            // The victim's login history, as the audit service finds it by the agent's identifier.
            let history = events.filter { Self.agentIdentifier(of: $0) == "\(AuditEventParts.userSystem)|\(id)" }.compactMap { Self.kind(of: $0) }
            #expect(history.filter { $0 == "login-failed" }.count == 7)  // 5 guesses, the locked attempt, the password grant
            #expect(history.firstIndex(of: "lockout").map { history[..<$0].filter { $0 == "login-failed" }.count } == 5)
            #expect(history.last == "login")
            let lockout = events.first { Self.kind(of: $0) == "lockout" }
            #expect(lockout?["outcome"]?.stringValue == "8")
            #expect(lockout?["type"]?["code"]?.stringValue == "110114")
            #expect(events.allSatisfy { $0["resourceType"]?.stringValue == "AuditEvent" && $0["recorded"]?.stringValue != nil })
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

    static func agentIdentifier(of event: JSONValue) -> String? {
        guard let identifier = event["agent"]?.arrayValue?.first?["who"]?["identifier"] else { return nil }
        return "\(identifier["system"]?.stringValue ?? "")|\(identifier["value"]?.stringValue ?? "")"
    }

    static func kind(of event: JSONValue) -> String? {
        event["entity"]?.arrayValue?.first?["detail"]?.arrayValue?.first { $0["type"]?.stringValue == "event" }?["valueString"]?.stringValue
    }
}
