import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import TestSupport
import Testing

/// Bad input never reaches a 500: each case gets the right status and a problem+json body whose
/// `status` matches.
@Suite struct BadInputTests {
    static let bigString = String(repeating: "a", count: 70_000)
    static let thousandAndOne = (0...1000).map { #"{"idempotencyKey":"k\#($0)","entry":{}}"# }.joined(separator: ",")

    static let postCases: [(body: String, status: HTTPResponse.Status)] = [
        ("not json", .badRequest),
        ("[]", .badRequest),
        (#"{"entries":[]}"#, .badRequest),
        (#"{"entries":{}}"#, .badRequest),
        (#"{"entries":[1]}"#, .badRequest),
        (#"{"entries":[{"entry":{}}]}"#, .badRequest),
        (#"{"entries":[{"idempotencyKey":"","entry":{}}]}"#, .badRequest),
        (#"{"entries":[{"idempotencyKey":7,"entry":{}}]}"#, .badRequest),
        (#"{"entries":[{"idempotencyKey":"k"}]}"#, .badRequest),
        (#"{"entries":[{"idempotencyKey":"k","entry":[1,2]}]}"#, .badRequest),
        (#"{"entries":[{"idempotencyKey":"k","entry":{"n":1e999}}]}"#, .badRequest),
        (#"{"entries":[{"idempotencyKey":"k","entry":{"n":12345678901234567890}}]}"#, .badRequest),
        (#"{"entries":[{"idempotencyKey":"k","entry":{},"extra":1}]}"#, .badRequest),
        (#"{"entries":[{"idempotencyKey":"k","entry":{"a":1,"a":2}}]}"#, .badRequest),
        (#"{"entries":[],"more":1}"#, .badRequest),
        (#"{"entries":[{"idempotencyKey":"k","entry":{"big":"\#(bigString)"}}]}"#, .contentTooLarge),
        (#"{"entries":[\#(thousandAndOne)]}"#, .contentTooLarge),
    ]

    @Test func malformedAppendsAreRejected() async throws {
        let fixture = try await LedgerFixture.make("badpost")
        let token = try await fixture.appendToken()
        try await fixture.app(["MAX_BODY_BYTES": "200000"]).test(.router) { client in
            for (body, status) in Self.postCases {
                let response = try await client.execute(
                    uri: "/entries", method: .post, headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
                    body: ByteBuffer(string: body)
                )
                try Self.expectProblem(response, status, "\(body.prefix(80))")
            }
            let tooBig = try await client.execute(
                uri: "/entries", method: .post, headers: [.authorization: "Bearer \(token)"],
                body: ByteBuffer(string: #"{"entries":[{"idempotencyKey":"k","entry":{"s":"\#(String(repeating: "x", count: 250_000))"}}]}"#)
            )
            try Self.expectProblem(tooBig, .contentTooLarge, "body over MAX_BODY_BYTES")
            let wrongType = try await client.execute(
                uri: "/entries", method: .post, headers: [.authorization: "Bearer \(token)", .contentType: "text/plain"],
                body: ByteBuffer(string: #"{"entries":[]}"#)
            )
            try Self.expectProblem(wrongType, .unsupportedMediaType, "text/plain")
            let badWait = try await client.execute(
                uri: "/entries?wait=forever", method: .post, headers: [.authorization: "Bearer \(token)"],
                body: ByteBuffer(string: #"{"entries":[{"idempotencyKey":"k","entry":{}}]}"#)
            )
            try Self.expectProblem(badWait, .badRequest, "wait=forever")
            // Nothing above was stored.
            _ = try await client.append([testEntry(0)], token: token, wait: true)
            let checkpoint = try Checkpoint.verified(note: try await client.getText("/checkpoint"), verifier: fixture.signer.verifier)
            #expect(checkpoint.size == 1)
        }
    }

    @Test func malformedReadsAreRejected() async throws {
        let fixture = try await LedgerFixture.make("badget")
        let token = try await fixture.appendToken()
        try await fixture.app().test(.router) { client in
            _ = try await client.append((0..<5).map { testEntry($0) }, token: token, wait: true)
            let cases: [(String, HTTPResponse.Status)] = [
                ("/proofs/inclusion?index=-1&size=5", .badRequest), ("/proofs/inclusion?index=abc&size=5", .badRequest),
                ("/proofs/inclusion?index=5&size=5", .badRequest), ("/proofs/inclusion?index=0&size=6", .badRequest),
                ("/proofs/inclusion?index=0&size=0", .badRequest), ("/proofs/inclusion?size=5", .badRequest), ("/proofs/inclusion?index=0", .badRequest),
                ("/proofs/inclusion?index=99999999999999999999&size=5", .badRequest),
                ("/proofs/inclusion?leafHash=notbase64!&size=5", .badRequest), ("/proofs/inclusion?leafHash=AAAA&size=5", .badRequest),
                ("/proofs/inclusion?leafHash=\(MerkleTree.emptyRoot.base64URLString)&size=5", .notFound),
                ("/proofs/consistency?from=3&to=2", .badRequest), ("/proofs/consistency?from=0&to=2", .badRequest),
                ("/proofs/consistency?from=1&to=9", .badRequest), ("/proofs/consistency?from=1", .badRequest),
                ("/proofs/consistency?from=1.5&to=2", .badRequest),
                ("/entries/5", .notFound), ("/entries/-1", .badRequest), ("/entries/x", .badRequest), ("/entries/5/tlog-proof", .notFound),
                ("/entries/99999999999999999999", .badRequest), ("/tile/0/abc", .notFound), ("/tile/99/000", .notFound),
                ("/nope", .notFound),
            ]
            for (uri, status) in cases {
                try Self.expectProblem(try await client.execute(uri: uri, method: .get), status, uri)
            }
        }
    }

    static func expectProblem(_ response: TestResponse, _ status: HTTPResponse.Status, _ what: String) throws {
        #expect(response.status == status, "\(what): \(String(buffer: response.body))")
        #expect(response.headers[.contentType] == "application/problem+json", "\(what)")
        let problem = try JSONParser.parse(response.body.readableBytesView)
        #expect(problem["status"]?.int64 == Int64(status.code), "\(what)")
        #expect(problem["title"]?.stringValue != nil, "\(what)")
    }
}
