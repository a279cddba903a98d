import Foundation
import HTTPTypes
import JWTKit
import Logging
import MedLedgerCore
import TestSupport
import Testing

@Suite struct TokenVerifierTests {
    /// Identity rotates its signing key: a token with the new `kid` makes the verifier refetch the
    /// JWKS instead of rejecting it, and tokens of the old, withdrawn key then fail.
    @Test func refetchesKeysWhenATokenNamesAnUnknownKid() async throws {
        let old = try await TestTokens()
        let new = try await TestTokens()
        let jwks = FileManager.default.temporaryDirectory.appendingPathComponent("rotating-\(UUID().uuidString).json")
        try Data(contentsOf: old.jwksURL).write(to: jwks)
        let verifier = TokenVerifier(
            jwksURL: jwks, issuer: TestTokens.issuer, audience: TestTokens.audience, logger: Logger(label: "test"), refreshInterval: .zero
        )
        let before = try await verifier.verify(try await old.token(scope: "a b", subject: "alice"))
        #expect(before.sub.value == "alice")
        #expect(before.scopes == ["a", "b"])
        try Data(contentsOf: new.jwksURL).write(to: jwks)
        let after = try await verifier.verify(try await new.token(scope: "a", subject: "bob"))
        #expect(after.sub.value == "bob")
        await #expect(throws: Problem.self) { try await verifier.verify(try await old.token(scope: "a")) }
    }

    @Test func unreachableKeysAreAServiceProblemNotAnAuthFailure() async throws {
        let tokens = try await TestTokens()
        let verifier = TokenVerifier(
            jwksURL: URL(string: "http://127.0.0.1:9/jwks.json")!, issuer: TestTokens.issuer, audience: TestTokens.audience,
            logger: Logger(label: "test")
        )
        await #expect {
            try await verifier.verify(try await tokens.token(scope: "a"))
        } throws: { error in
            (error as? Problem)?.status.code == 503
        }
    }
}

@Suite struct TokenVerifierBurstTests {
    /// Many first requests at once share one JWKS fetch; none sees "keys unavailable".
    @Test func concurrentFirstRequestsShareOneLoad() async throws {
        let tokens = try await TestTokens()
        let verifier = TokenVerifier(jwksURL: tokens.jwksURL, issuer: TestTokens.issuer, audience: TestTokens.audience, logger: Logger(label: "test"))
        let token = try await tokens.token(scope: "a")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<32 {
                group.addTask { _ = try await verifier.verify(token) }
            }
            try await group.waitForAll()
        }
    }
}
