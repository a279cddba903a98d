import ArgumentParser
import Foundation
import JWTKit
import MedLedgerCore

/// `medledger dev-token`: mints an access token with a key from `dev-keygen`, so scripts can
/// call services before (or without) the identity service. Development only.
struct DevTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dev-token", abstract: "Development only: mint an access token.")

    @Option(help: "The private JWK written by dev-keygen.") var key: String
    @Option(help: "iss: the identity service's URL.") var issuer: String = "http://127.0.0.1:8081"
    @Option(help: "aud") var audience: String = "medledger"
    @Option(help: "sub") var subject: String
    @Option(help: "role claim") var role: String
    @Option(help: "Space-separated scopes.") var scope: String
    @Option(help: "fhirUser claim, e.g. Practitioner/123.") var fhirUser: String?
    @Option(help: "Lifetime in seconds (negative makes an expired token, for tests).") var ttl: Int = 900

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: key), let jwk = try? JSONParser.parse(Array(data)),
            case .string(let d)? = jwk["d"], case .string(let kid)? = jwk["kid"]
        else {
            throw ValidationError("\(key) is not a private Ed25519 JWK from dev-keygen")
        }
        let keys = try await JWTKeyCollection().add(eddsa: EdDSA.PrivateKey(d: d, curve: .ed25519), kid: JWKIdentifier(string: kid))
        let now = Date()
        let token = AccessToken(
            iss: issuer, sub: subject, aud: audience, exp: now.addingTimeInterval(TimeInterval(ttl)), iat: now, jti: UUID().uuidString,
            sid: "dev-" + UUID().uuidString, role: role, fhirUser: fhirUser, scope: scope
        )
        print(try await keys.sign(token, kid: JWKIdentifier(string: kid)))
    }
}
