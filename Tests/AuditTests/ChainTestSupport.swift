import Configuration
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Ledger
import MedLedgerCore
import PostgresNIO
import TestSupport
import Testing

@testable import Audit

extension AuditFixture {
    /// Runs `statements` as the tables' owner with their append-only triggers off, as someone
    /// with database access who wants to cover their tracks would.
    func tamper(_ statements: [PostgresQuery]) async throws {
        let tables = ["audit_events", "audit_patient_events", "audit_anchors"]
        try await withPostgres(databaseURL) { client in
            try await client.withConnection { connection in
                for table in tables {
                    try await connection.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(table) DISABLE TRIGGER USER"), logger: testLogger)
                }
                for statement in statements { try await connection.query(statement, logger: testLogger) }
                for table in tables {
                    try await connection.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(table) ENABLE TRIGGER USER"), logger: testLogger)
                }
            }
        }
    }

    /// Deletes events (and their patient rows) in `range`.
    func delete(_ range: ClosedRange<Int64>) async throws {
        try await tamper([
            "DELETE FROM audit_patient_events WHERE seq BETWEEN \(range.lowerBound) AND \(range.upperBound)",
            "DELETE FROM audit_events WHERE seq BETWEEN \(range.lowerBound) AND \(range.upperBound)",
        ])
    }

    /// Stores `events` sample events (in batches of at most 1000) through the API.
    func store(_ events: ClosedRange<Int>, on client: some TestClientProtocol) async throws {
        let token = try await writer()
        for start in stride(from: events.lowerBound, through: events.upperBound, by: 1000) {
            let items = (start...min(start + 999, events.upperBound)).map { ("e\($0)", sampleEvent($0, patient: "p\($0 % 7)")) }
            let answer = try await client.postEvents(items, token: token)
            #expect(answer.status == .ok, "\(answer.text)")
        }
    }
}

/// `GET /chain/verify`'s answer.
struct ChainAnswer {
    var json: JSONValue

    var valid: Bool? { if case .bool(let valid)? = json["valid"] { valid } else { nil } }
    var checked: Int? { json["checked"]?.intValue }
    /// (seq, problem) pairs.
    var problems: [(seq: Int, problem: String)] {
        (json["problems"]?.arrayValue ?? []).map { ($0["seq"]?.intValue ?? -1, $0["problem"]?.stringValue ?? "") }
    }
    var problemSeqs: [Int] { problems.map(\.seq) }
    var anchors: JSONValue? { json["anchors"] }
}

extension TestClientProtocol {
    /// `GET /chain/verify` as an admin; expects 200.
    func verifyChain(_ query: String = "", token: String) async throws -> ChainAnswer {
        let answer = try await send(.get, "/chain/verify" + query, token: token)
        #expect(answer.status == .ok, "\(answer.text)")
        return ChainAnswer(json: try #require(answer.json))
    }
}

/// A ledger running in-process on a free port, which audit anchors in, and a token endpoint in
/// identity's place that issues audit its service token (`medledger/ledger.append`).
struct LedgerPeerFixture {
    let databaseURL: String
    let signer: NoteSigner

    static func make() async throws -> LedgerPeerFixture {
        LedgerPeerFixture(
            databaseURL: try await TestDatabase.create(prefix: "auditledger"),
            signer: try NoteSigner.generate(name: "test.medledger.local/ledger")
        )
    }

    func ledger(_ tokens: TestTokens) async throws -> some ApplicationProtocol {
        try await Ledger.buildApplication(
            reader: testConfig([
                "DATABASE_URL": databaseURL, "JWKS_URL": tokens.jwksURL.absoluteString, "LEDGER_SKEY": signer.skey, "LEDGER_ORIGIN": signer.name,
                "LEDGER_CHECKPOINT_INTERVAL_MS": "20", "MEDLEDGER_ENV": "development",
            ])
        )
    }

    /// Audit's settings to anchor in the ledger at `ledgerPort` with tokens from `identityPort`.
    func auditVariables(ledgerPort: Int, identityPort: Int) -> [String: String] {
        [
            "LEDGER_URL": "http://localhost:\(ledgerPort)", "LEDGER_VKEY": signer.verifier.vkey, "IDENTITY_URL": "http://localhost:\(identityPort)",
            "IDENTITY_ISSUER": TestTokens.issuer, "OAUTH_CLIENT_ID": "audit", "OAUTH_CLIENT_SECRET": "test-secret", "AUDIT_ANCHOR_SECONDS": "1",
        ]
    }

    /// Ledger rows: how many leaves it holds.
    func leafCount() async throws -> Int64 {
        try await withPostgres(databaseURL) { client in
            for try await count in try await client.query("SELECT count(*) FROM leaves", logger: testLogger).decode(Int64.self) { return count }
            return -1
        }
    }
}

/// `POST /auth/token` answering every client_credentials request with a service token.
func tokenEndpoint(_ tokens: TestTokens) -> some ApplicationProtocol {
    let router = Router()
    router.post("/auth/token") { _, _ -> Response in
        let token = try await tokens.token(role: "service", scope: Scope.ledgerAppend, subject: "audit")
        let body = #"{"access_token":"\#(token)","token_type":"Bearer","expires_in":900}"#
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
    return Application(router: router)
}

extension AuditFixture {
    /// Waits (up to 20 s) until the chain is anchored at `size` or beyond.
    func waitForAnchor(_ size: Int64) async throws {
        for _ in 0..<200 {
            if try await count("SELECT coalesce(max(seq), 0) FROM audit_anchors") >= size { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("the chain was not anchored at \(size) within 20 s")
    }
}
