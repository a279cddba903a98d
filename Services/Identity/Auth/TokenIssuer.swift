import Foundation
import MedLedgerCore

/// Signs access tokens with the design guide's claims.
struct TokenIssuer: Sendable {
    let keys: SigningKeyStore
    let issuer: String
    let audience: String
    let lifetime: Int

    struct Issued: Sendable {
        var accessToken: String
        var scopes: [String]
        var refreshToken: String?
    }

    func issue(user: UserRecord, session: UUID, scopes: [String], refreshToken: String) async throws -> Issued {
        let claims = claims(sub: user.id.uuidString.lowercased(), sid: session.uuidString.lowercased(), role: user.role, fhirUser: user.fhirUser, scopes: scopes)
        return Issued(accessToken: try await keys.sign(claims), scopes: scopes, refreshToken: refreshToken)
    }

    /// No session and no refresh token: a client simply asks again (RFC 6749 §4.4.3).
    func issue(client: ClientRecord, scopes: [String]) async throws -> Issued {
        var claims = claims(sub: client.id, sid: nil, role: client.role, fhirUser: client.organization, scopes: scopes)
        claims.trusted = client.trusted
        return Issued(accessToken: try await keys.sign(claims), scopes: scopes)
    }

    func claims(sub: String, sid: String?, role: Role, fhirUser: String?, scopes: [String]) -> AccessToken {
        let now = Date()
        return AccessToken(
            iss: issuer, sub: sub, aud: audience, exp: now.addingTimeInterval(TimeInterval(lifetime)), iat: now,
            jti: UUID().uuidString.lowercased(), sid: sid, role: role.rawValue, fhirUser: fhirUser, scope: scopes.joined(separator: " ")
        )
    }

    /// The token response body (RFC 6749 §5.1), also what `/auth/login` answers.
    func responseJSON(_ issued: Issued) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("access_token", .string(issued.accessToken)),
            ("token_type", .string("Bearer")),
            ("expires_in", .number(String(lifetime))),
            ("scope", .string(issued.scopes.joined(separator: " "))),
        ]
        if let refresh = issued.refreshToken { members.append(("refresh_token", .string(refresh))) }
        return .object(members)
    }
}
