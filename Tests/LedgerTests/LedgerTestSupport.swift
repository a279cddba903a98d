import HTTPTypes
import Configuration
import Foundation
import Hummingbird
import HummingbirdTesting
import Ledger
import MedLedgerCore
import NIOCore
import TestSupport
import Testing

/// A ledger under test: its own database, signing key and token issuer.
struct LedgerFixture {
    let databaseURL: String
    let signer: NoteSigner
    let tokens: TestTokens

    static func make(_ name: String = "ledger") async throws -> LedgerFixture {
        LedgerFixture(
            databaseURL: try await TestDatabase.create(prefix: name),
            signer: try NoteSigner.generate(name: "test.medledger.local/ledger"),
            tokens: try await TestTokens()
        )
    }

    func app(_ extra: [String: String] = [:]) async throws -> some ApplicationProtocol {
        var variables = [
            "DATABASE_URL": databaseURL,
            "JWKS_URL": tokens.jwksURL.absoluteString,
            "LEDGER_SKEY": signer.skey,
            "LEDGER_ORIGIN": signer.name,
            "LEDGER_CHECKPOINT_INTERVAL_MS": "20",
            "MEDLEDGER_ENV": "development",
        ]
        variables.merge(extra) { $1 }
        return try await buildApplication(reader: testConfig(variables))
    }

    func appendToken() async throws -> String {
        try await tokens.token(scope: "medledger/ledger.append")
    }
}

/// Helpers on the test client for the ledger's JSON API.
extension TestClientProtocol {
    func append(_ entries: [(key: String, entry: String)], token: String, wait: Bool = false) async throws -> JSONValue {
        let items = entries.map { #"{"idempotencyKey":"\#($0.key)","entry":\#($0.entry)}"# }.joined(separator: ",")
        let response = try await execute(
            uri: "/entries" + (wait ? "?wait=checkpoint" : ""),
            method: .post,
            headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
            body: ByteBuffer(string: #"{"entries":[\#(items)]}"#)
        )
        #expect(response.status == .ok, "append answered \(response.status): \(String(buffer: response.body))")
        return try JSONParser.parse(response.body.readableBytesView)
    }

    func getJSON(_ uri: String) async throws -> JSONValue {
        let response = try await execute(uri: uri, method: .get)
        #expect(response.status == .ok, "GET \(uri) answered \(response.status): \(String(buffer: response.body))")
        return try JSONParser.parse(response.body.readableBytesView)
    }

    func getText(_ uri: String) async throws -> String {
        let response = try await execute(uri: uri, method: .get)
        #expect(response.status == .ok, "GET \(uri) answered \(response.status)")
        return String(buffer: response.body)
    }
}

extension JSONValue {
    var int64: Int64? {
        if case .number(let text) = self { return Int64(text) }
        return nil
    }

    var hashes: [[UInt8]] {
        (self.arrayValue ?? []).compactMap { $0.stringValue.flatMap(Base64.decode) }
    }

    var indices: [Int64] {
        (self["entries"]?.arrayValue ?? []).compactMap { $0["index"]?.int64 }
    }
}

/// The JSON entry used for leaf `n` in tests, and its RFC 8785 bytes (the leaf data).
func testEntry(_ n: Int, tag: String = "t") -> (key: String, entry: String) {
    (key: "\(tag)-\(n)", entry: #"{"v":1,"n":\#(n),"tag":"\#(tag)","x":1.50}"#)
}

func leafData(_ entry: String) throws -> [UInt8] {
    try JSONParser.parse(entry).canonicalized()
}
