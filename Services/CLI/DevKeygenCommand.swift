import ArgumentParser
import Crypto
import Foundation
import MedLedgerCore

/// `medledger dev-keygen`: an Ed25519 JWT signing key for development stacks, written as a
/// private JWK and a public JWKS that services trust through `JWKS_URL=file://…` (development
/// mode only; production tokens come from the identity service).
struct DevKeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dev-keygen", abstract: "Development only: create a JWT signing key and its JWKS.")

    @Option(help: "Directory for signing.jwk (private, mode 600) and jwks.json.")
    var dir: String

    func run() throws {
        let key = Curve25519.Signing.PrivateKey()
        let kid = "dev-" + Array(SHA256.hash(data: key.publicKey.rawRepresentation)).prefix(8).hexString
        let x = Array(key.publicKey.rawRepresentation).base64URLString
        let d = Array(key.rawRepresentation).base64URLString
        let publicJWK: JSONValue = .object([
            ("kty", .string("OKP")), ("crv", .string("Ed25519")), ("x", .string(x)), ("kid", .string(kid)), ("alg", .string("EdDSA")),
            ("use", .string("sig")),
        ])
        let privateJWK: JSONValue = .object([
            ("kty", .string("OKP")), ("crv", .string("Ed25519")), ("x", .string(x)), ("d", .string(d)), ("kid", .string(kid)),
            ("alg", .string("EdDSA")),
        ])
        let directory = URL(fileURLWithPath: dir)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let signingPath = directory.appendingPathComponent("signing.jwk").path
        FileManager.default.createFile(atPath: signingPath, contents: Data(privateJWK.serialized()), attributes: [.posixPermissions: 0o600])
        try Data(JSONValue.object([("keys", .array([publicJWK]))]).serialized()).write(to: directory.appendingPathComponent("jwks.json"))
        print("wrote \(signingPath) and \(directory.appendingPathComponent("jwks.json").path) (kid \(kid))")
    }
}
