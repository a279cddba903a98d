public import Foundation
public import JWTKit

/// The claims of a MedLedger access token (design guide, "Auth"): an EdDSA JWT issued by identity.
public struct AccessToken: JWTPayload, Sendable {
    public var iss: IssuerClaim
    public var sub: SubjectClaim
    public var aud: AudienceClaim
    public var exp: ExpirationClaim
    public var nbf: NotBeforeClaim?
    public var iat: IssuedAtClaim
    public var jti: IDClaim
    public var sid: String?
    public var role: String
    public var fhirUser: String?
    /// Space-separated SMART v2 / MedLedger scopes.
    public var scope: String
    /// For EHR clients: registered as in-house (`trusted`), so no patient consent is needed.
    public var trusted: Bool?

    public init(
        iss: String, sub: String, aud: String, exp: Date, iat: Date, jti: String, sid: String?, role: String,
        fhirUser: String?, scope: String, trusted: Bool? = nil
    ) {
        self.iss = IssuerClaim(value: iss)
        self.sub = SubjectClaim(value: sub)
        self.aud = AudienceClaim(value: [aud])
        // Whole seconds: NumericDate allows fractions, but most verifiers expect integers.
        self.exp = ExpirationClaim(value: Date(timeIntervalSince1970: exp.timeIntervalSince1970.rounded(.down)))
        self.iat = IssuedAtClaim(value: Date(timeIntervalSince1970: iat.timeIntervalSince1970.rounded(.down)))
        self.jti = IDClaim(value: jti)
        self.sid = sid
        self.role = role
        self.fhirUser = fhirUser
        self.scope = scope
        self.trusted = trusted
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        try nbf?.verifyNotBefore()
    }

    public var scopes: Set<String> { Set(scope.split(separator: " ").map(String.init)) }
}
