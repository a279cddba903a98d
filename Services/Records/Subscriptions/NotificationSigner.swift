import Crypto
import Foundation
import Logging
import MedLedgerCore
import PostgresNIO
import Synchronization

/// Records' Ed25519 key for notifications: every rest-hook body is signed with a detached JWS
/// (RFC 7515 appendix F) so that a receiver can check it came from here, against the key
/// published at `/.well-known/jwks.json`. The key's seed is kept in `data_keys`, wrapped by
/// the KEK like every data key (and rewrapped by `rotate-kek`), so that every records instance
/// and every restart signs with the same key.
final class NotificationSigner: Sendable {
    static let keyOwner = "notification-signing"

    private let keys: DataKeyStore
    private let postgres: PostgresClient
    private let loaded = Mutex<(key: Curve25519.Signing.PrivateKey, kid: String)?>(nil)

    init(postgres: PostgresClient, keys: DataKeyStore) {
        self.postgres = postgres
        self.keys = keys
    }

    /// `<header>..<signature>`: the compact JWS with its payload (the body) left out.
    func detachedSignature(_ body: [UInt8], logger: Logger) async throws -> String {
        let (key, kid) = try await signingKey(logger: logger)
        let header = JSONValue.object([("alg", .string("EdDSA")), ("kid", .string(kid))]).serialized().base64URLString
        let signature = try key.signature(for: Array((header + "." + body.base64URLString).utf8))
        return header + ".." + Array(signature).base64URLString
    }

    /// The JWKS document with the public key.
    func jwks(logger: Logger) async throws -> JSONValue {
        let (key, kid) = try await signingKey(logger: logger)
        return .object([("keys", .array([Self.jwk(key.publicKey, kid: kid)]))])
    }

    private func signingKey(logger: Logger) async throws -> (Curve25519.Signing.PrivateKey, String) {
        if let loaded = loaded.withLock({ $0 }) { return loaded }
        let seed = try await Database.transaction(postgres, logger: logger) { connection in
            try await keys.key(for: Self.keyOwner, on: connection, logger: logger)
        }
        let key = try seed.withUnsafeBytes { try Curve25519.Signing.PrivateKey(rawRepresentation: Data($0)) }
        let kid = Self.thumbprint(key.publicKey)
        loaded.withLock { $0 = (key, kid) }
        return (key, kid)
    }

    static func jwk(_ key: Curve25519.Signing.PublicKey, kid: String) -> JSONValue {
        .object([
            ("kty", .string("OKP")), ("crv", .string("Ed25519")), ("x", .string(Array(key.rawRepresentation).base64URLString)),
            ("kid", .string(kid)), ("use", .string("sig")), ("alg", .string("EdDSA")),
        ])
    }

    /// RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace.
    static func thumbprint(_ key: Curve25519.Signing.PublicKey) -> String {
        let members = "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"\(Array(key.rawRepresentation).base64URLString)\"}"
        return Array(SHA256.hash(data: Array(members.utf8))).base64URLString
    }
}
