import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import TestSupport
import Testing

@Suite struct AuthTests {
    @Test func appendingRequiresAValidServiceToken() async throws {
        let fixture = try await LedgerFixture.make("auth")
        let stranger = try await TestTokens()
        let body = #"{"entries":[{"idempotencyKey":"k","entry":{}}]}"#
        let cases: [(String?, HTTPResponse.Status, String)] = [
            (nil, .unauthorized, "no token"),
            ("Bearer", .unauthorized, "empty bearer"),
            ("Basic dXNlcjpwYXNz", .unauthorized, "basic auth"),
            ("Bearer not.a.jwt", .unauthorized, "garbage"),
            ("Bearer " + (try await fixture.tokens.token(scope: "medledger/audit.write")), .forbidden, "wrong scope"),
            ("Bearer " + (try await fixture.tokens.token(scope: "medledger/ledger.append", lifetime: -60)), .unauthorized, "expired"),
            ("Bearer " + (try await fixture.tokens.token(scope: "medledger/ledger.append", audience: "other")), .unauthorized, "audience"),
            ("Bearer " + (try await fixture.tokens.token(scope: "medledger/ledger.append", issuer: "http://evil")), .unauthorized, "issuer"),
            ("Bearer " + (try await stranger.token(scope: "medledger/ledger.append")), .unauthorized, "unknown key"),
            (
                "Bearer " + (try await fixture.tokens.token(scope: "medledger/ledger.append", notBefore: Date().addingTimeInterval(3600))),
                .unauthorized, "not valid yet"
            ),
        ]
        try await fixture.app().test(.router) { client in
            for (authorization, status, what) in cases {
                var headers: HTTPFields = [.contentType: "application/json"]
                if let authorization { headers[.authorization] = authorization }
                let response = try await client.execute(uri: "/entries", method: .post, headers: headers, body: ByteBuffer(string: body))
                try BadInputTests.expectProblem(response, status, what)
                #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true, "\(what)")
            }
            let good = try await fixture.appendToken()
            _ = try await client.append([testEntry(1)], token: good, wait: true)
            // Public reads need no token.
            for uri in ["/checkpoint", "/entries/0", "/entries/0/tlog-proof", "/proofs/inclusion?index=0&size=1", "/tile/0/000.p/1"] {
                #expect(try await client.execute(uri: uri, method: .get).status == .ok, "\(uri)")
            }
        }
    }
}
