import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Identity
import JWTKit
import Logging
import MedLedgerCore
import NIOCore
import TestSupport
import Testing

/// Identity's tokens as another MedLedger service sees them: through the Shared bearer
/// middleware, verifying against identity's JWKS over HTTP.
@Suite struct VerificationTests {
    /// A stand-in for any service: one route behind the Shared middleware, with the default
    /// JWKS refetch interval (a rotated key must be accepted within it, not refused).
    static func service(jwksURL: String, audience: String = "medledger") -> some ApplicationProtocol {
        let verifier = TokenVerifier(
            jwksURL: URL(string: jwksURL)!, issuer: IdentityFixture.issuer, audience: audience, logger: testLogger)
        let router = Router(context: ServiceRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        router.group("/protected").add(middleware: BearerAuthMiddleware(verifier: verifier, anyScope: [Scope.ledgerAppend])).get { _, context in
            context.token?.sub.value ?? ""
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    @Test func theSharedMiddlewareAcceptsOnlyGenuineTokens() async throws {
        let fixture = try await IdentityFixture.make("verify")
        try await fixture.app().test(.live) { identity in
            let jwks = "http://127.0.0.1:\(identity.port!)/.well-known/jwks.json"
            let good = try parseTokens(try await identity.form("grant_type=client_credentials", headers: [.authorization: TokenGrantTests.basic])).access
            let admin = try await identity.adminToken()
            let parts = good.split(separator: ".").map(String.init)

            // Tampered: the payload changed, the signature kept.
            var payload = try claims(good)
            if case .object(var members) = payload {
                members = members.map { $0.key == "sub" ? ($0.key, .string("intruder")) : $0 }
                payload = .object(members)
            }
            let tampered = [parts[0], payload.serialized().base64URLString, parts[2]].joined(separator: ".")
            // alg none: same claims, no signature.
            let noneHeader = #"{"alg":"none","typ":"JWT","kid":"\#(try header(good)["kid"]?.stringValue ?? "")"}"#
            let unsigned = [Array(noneHeader.utf8).base64URLString, parts[1], ""].joined(separator: ".")
            // Another key under the genuine kid.
            let impostorKeys = await JWTKeyCollection().add(
                eddsa: try EdDSA.PrivateKey(curve: .ed25519), kid: JWKIdentifier(string: try header(good)["kid"]?.stringValue ?? ""))
            let forged = try await impostorKeys.sign(try JSONDecoder().decode(AccessToken.self, from: Data(claims(good).serialized())))

            try await Self.service(jwksURL: jwks).test(.router) { service in
                #expect(String(buffer: try await service.request(.get, "/protected", token: good).body) == "ledger-writer")
                let refused: [(String, HTTPResponse.Status, String)] = [
                    (tampered, .unauthorized, "tampered payload"), (unsigned, .unauthorized, "alg none"), (forged, .unauthorized, "wrong key"),
                    (admin, .forbidden, "a user token without the scope"),
                ]
                for (token, status, what) in refused {
                    expectProblem(try await service.request(.get, "/protected", token: token), status, what)
                }
            }
            try await Self.service(jwksURL: jwks, audience: "another-deployment").test(.router) { service in
                expectProblem(try await service.request(.get, "/protected", token: good), .unauthorized, "wrong audience")
            }
        }
    }

    @Test func rotatedKeysArePickedUpByVerifiers() async throws {
        let fixture = try await IdentityFixture.make("rotation")
        try await fixture.app().test(.live) { identity in
            let jwks = "http://127.0.0.1:\(identity.port!)/.well-known/jwks.json"
            let before = try parseTokens(try await identity.form("grant_type=client_credentials", headers: [.authorization: TokenGrantTests.basic])).access
            try await Self.service(jwksURL: jwks).test(.router) { service in
                #expect(try await service.request(.get, "/protected", token: before).status == .ok)
                let kid = try await rotateSigningKeys(reader: testConfig(fixture.variables))
                #expect(kid != (try header(before)["kid"]?.stringValue))
                // The server re-reads its keys every SIGNING_KEY_REFRESH_MS (100 ms here).
                var after = before
                for _ in 0..<50 where try header(after)["kid"]?.stringValue != kid {
                    try await Task.sleep(for: .milliseconds(100))
                    after = try parseTokens(try await identity.form("grant_type=client_credentials", headers: [.authorization: TokenGrantTests.basic])).access
                }
                #expect(try header(after)["kid"]?.stringValue == kid)
                // Identity accepts its own tokens signed with the new key (and the old).
                let user = try await identity.login("admin", IdentityFixture.adminPassword).access
                #expect(try header(user)["kid"]?.stringValue == kid)
                #expect(try await identity.request(.get, "/users/me", token: user).status == .ok)
                let served = try json(try await identity.request(.get, "/.well-known/jwks.json"))["keys"]?.arrayValue?.compactMap { $0["kid"]?.stringValue }
                #expect(served == [kid, try header(before)["kid"]?.stringValue ?? ""])
                // The verifier has cached the old JWKS; the unknown kid makes it fetch again.
                #expect(try await service.request(.get, "/protected", token: after).status == .ok)
                #expect(try await service.request(.get, "/protected", token: before).status == .ok)
                // After a second rotation the first key is retired and no longer served.
                _ = try await rotateSigningKeys(reader: testConfig(fixture.variables))
                try await Task.sleep(for: .milliseconds(300))
                let keys = try json(try await identity.request(.get, "/.well-known/jwks.json"))["keys"]?.arrayValue ?? []
                #expect(keys.count == 2 && !keys.contains { $0["kid"] == (try? header(before)["kid"]) })
            }
        }
    }

    /// Two identity processes on one database (scale-out), each serving the JWKS it read up to
    /// SIGNING_KEY_REFRESH_MS ago: after a rotation neither signs with a key the other does not list yet.
    @Test func everyIdentityListsANewKeyBeforeAnyIdentitySignsWithIt() async throws {
        let fixture = try await IdentityFixture.make("publish")
        let refresh = ["SIGNING_KEY_REFRESH_MS": "2000"]
        try await fixture.app(refresh).test(.live) { first in
            try await fixture.app(refresh).test(.live) { second in
                func signingKid() async throws -> String {
                    let token = try parseTokens(try await second.form("grant_type=client_credentials", headers: [.authorization: TokenGrantTests.basic]))
                    return try header(token.access)["kid"]?.stringValue ?? ""
                }
                func listedKids() async throws -> [String] {
                    try json(try await first.request(.get, "/.well-known/jwks.json"))["keys"]?.arrayValue?.compactMap { $0["kid"]?.stringValue } ?? []
                }
                // The second reads its keys before the first, so it is the first to read them again after the rotation.
                let old = try await signingKid()
                try await Task.sleep(for: .milliseconds(800))
                #expect(try await listedKids() == [old])
                let new = try await rotateSigningKeys(reader: testConfig(fixture.variables))
                let clock = ContinuousClock()
                let start = clock.now
                var signingNew: ContinuousClock.Instant?
                while clock.now - start < .seconds(12) {
                    let (signing, listed) = (try await signingKid(), try await listedKids())
                    guard listed.contains(signing) else {
                        Issue.record("the second identity signs with \(signing), the first lists only \(listed)")
                        return
                    }
                    if signing == new, signingNew == nil { signingNew = clock.now }
                    if let signingNew, clock.now - signingNew > .seconds(1) { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(signingNew != nil, "the new key never signed")
                #expect(try await listedKids() == [new, old])
            }
        }
    }

    @Test func servicesFetchAndCacheTheirOwnTokens() async throws {
        let fixture = try await IdentityFixture.make("servicetoken")
        try await fixture.app().test(.live) { identity in
            let url = URL(string: "http://127.0.0.1:\(identity.port!)")!
            let tokens = ServiceTokenClient(
                identityURL: url, credentials: .init(clientID: "ledger-writer", clientSecret: IdentityFixture.clientSecret), logger: testLogger)
            async let first = tokens.token()
            async let second = tokens.token()
            let (a, b) = try await (first, second)
            #expect(a == b, "concurrent callers share one fetch")
            #expect(try await tokens.token() == a, "cached until shortly before expiry")
            await tokens.invalidate()
            #expect(try await tokens.token() != a)
            #expect(try claims(a)["sub"]?.stringValue == "ledger-writer")
            let wrong = ServiceTokenClient(identityURL: url, credentials: .init(clientID: "ledger-writer", clientSecret: "wrong"), logger: testLogger)
            await #expect(throws: ServiceTokenClient.FetchError.self) { try await wrong.token() }
        }
    }
}
