public import Foundation
import JWTKit
import MedLedgerCore

/// A test identity provider: an Ed25519 key whose JWKS is written to a temporary file that the
/// service under test trusts (`JWKS_URL=file://…`, development mode), and tokens minted with it.
public struct TestTokens: Sendable {
    public static let issuer = "http://127.0.0.1:8081"
    public static let audience = "medledger"

    public let jwksURL: URL
    let keys: JWTKeyCollection
    let kid: String

    public init() async throws {
        let key = try EdDSA.PrivateKey(curve: .ed25519)
        kid = "test-\(UUID().uuidString.prefix(8))"
        keys = await JWTKeyCollection().add(eddsa: key, kid: JWKIdentifier(string: kid))
        let x = Array(key.publicKey.rawRepresentation).base64URLString
        let jwks = #"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"\#(kid)","x":"\#(x)"}]}"#
        jwksURL = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(kid).json")
        try Data(jwks.utf8).write(to: jwksURL)
    }

    public func token(
        role: String = "service",
        scope: String,
        subject: String = "test-client",
        issuer: String = TestTokens.issuer,
        audience: String = TestTokens.audience,
        lifetime: TimeInterval = 900,
        notBefore: Date? = nil,
        fhirUser: String? = nil,
        trusted: Bool? = nil
    ) async throws -> String {
        let now = Date()
        var claims = AccessToken(
            iss: issuer, sub: subject, aud: audience, exp: now.addingTimeInterval(lifetime), iat: now, jti: UUID().uuidString,
            sid: nil, role: role, fhirUser: fhirUser, scope: scope, trusted: trusted
        )
        claims.nbf = notBefore.map { NotBeforeClaim(value: $0) }
        return try await keys.sign(claims, kid: JWKIdentifier(string: kid))
    }
}
