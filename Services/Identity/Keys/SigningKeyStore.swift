import Crypto
import Foundation
import JWTKit
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// One token-signing key: Ed25519, named by its RFC 7638 thumbprint.
struct SigningKey: Sendable {
    var kid: String
    var privateKey: Curve25519.Signing.PrivateKey

    var publicJWK: JSONValue {
        .object([
            ("kty", .string("OKP")), ("crv", .string("Ed25519")), ("alg", .string("EdDSA")), ("use", .string("sig")),
            ("kid", .string(kid)), ("x", .string(Array(privateKey.publicKey.rawRepresentation).base64URLString)),
        ])
    }

    /// RFC 7638: SHA-256 of the required members in lexicographic order, base64url.
    static func thumbprint(_ publicKey: Curve25519.Signing.PublicKey) -> String {
        let x = Array(publicKey.rawRepresentation).base64URLString
        let canonical = #"{"crv":"Ed25519","kty":"OKP","x":"\#(x)"}"#
        return Array(SHA256.hash(data: Array(canonical.utf8))).base64URLString
    }
}

/// The signing keys, sealed in the database with `IDENTITY_KEK` (AES-GCM, the kid as associated
/// data so a sealed key cannot be moved to another row). The active key signs; the previous one
/// stays in the JWKS so tokens it signed verify until they expire. Other processes may rotate
/// (`medledger-identity rotate-keys`), so the keys are re-read every `refresh`.
///
/// Publish before use: several identity processes may share the database, each serving the JWKS
/// it read up to `refresh` ago. A new active key is listed at once but signs only once it is
/// older than twice `refresh` (until then the previous key signs), so every process lists a key
/// before any process signs with it, and a verifier that fetches the JWKS from any of them after
/// seeing a new kid finds it.
actor SigningKeyStore {
    struct Keys: Sendable {
        /// The key that signs: the active one, or the previous one while the active one is being published.
        var signing: SigningKey
        var signer: JWTKeyCollection
        var jwks: String
    }

    struct UnsealError: Error, CustomStringConvertible {
        var description: String { "IDENTITY_KEK does not open the stored signing keys (was it changed?)" }
    }

    let postgres: PostgresClient
    let kek: SymmetricKey
    let refresh: Duration
    let logger: Logger
    var keys: (keys: Keys, loaded: ContinuousClock.Instant)?
    var loading: Task<Keys, any Error>?

    init(postgres: PostgresClient, kek: SymmetricKey, refresh: Duration, logger: Logger) {
        self.postgres = postgres
        self.kek = kek
        self.refresh = refresh
        self.logger = logger
    }

    func current() async throws -> Keys {
        if let keys, ContinuousClock.now - keys.loaded < refresh { return keys.keys }
        let task: Task<Keys, any Error>
        if let loading {
            task = loading
        } else {
            task = Task { [postgres, kek, refresh, logger] in try await Self.load(postgres: postgres, kek: kek, publishing: refresh * 2, logger: logger) }
            loading = task
        }
        defer { if loading == task { loading = nil } }
        let loaded = try await task.value
        if keys?.keys.signing.kid != loaded.signing.kid {
            logger.info("signing with key", metadata: ["kid": "\(loaded.signing.kid)"])
        }
        keys = (loaded, .now)
        return loaded
    }

    func sign(_ claims: AccessToken) async throws -> String {
        let keys = try await current()
        return try await keys.signer.sign(claims, kid: JWKIdentifier(string: keys.signing.kid))
    }

    func jwks() async throws -> String { try await current().jwks }

    /// The listed keys; the active one signs once it is older than `publishing` (by the
    /// database's clock, which every identity process shares), or when it is the only key.
    static func load(postgres: PostgresClient, kek: SymmetricKey, publishing: Duration, logger: Logger) async throws -> Keys {
        var active: SigningKey?
        var previous: SigningKey?
        var activePublished = true
        let rows = try await postgres.query(
            """
            SELECT kid, sealed_private_key, status, created_at <= now() - make_interval(secs => \(publishing / .seconds(1)))
            FROM signing_keys WHERE status IN ('active', 'previous')
            """,
            logger: logger)
        for try await (kid, sealed, status, published) in rows.decode((String, ByteBuffer, String, Bool).self) {
            let key = try unseal(Array(buffer: sealed), kid: kid, kek: kek)
            if status == "active" {
                (active, activePublished) = (key, published)
            } else {
                previous = key
            }
        }
        guard let active else { throw UnsealError() }
        let signing = activePublished ? active : previous ?? active
        let signer = await JWTKeyCollection().add(eddsa: EdDSA.PrivateKey(backing: signing.privateKey), kid: JWKIdentifier(string: signing.kid))
        let jwks = JSONValue.object([("keys", .array([active, previous].compactMap { $0?.publicJWK }))]).serialized()
        return Keys(signing: signing, signer: signer, jwks: String(decoding: jwks, as: UTF8.self))
    }

    static func unseal(_ sealed: [UInt8], kid: String, kek: SymmetricKey) throws -> SigningKey {
        do {
            let raw = try AES.GCM.open(try AES.GCM.SealedBox(combined: sealed), using: kek, authenticating: Array(kid.utf8))
            return SigningKey(kid: kid, privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw))
        } catch {
            throw UnsealError()
        }
    }

    /// Makes a new active key; the active one becomes previous, the previous one is retired.
    /// Serialised by a transaction-scoped advisory lock, so two rotations cannot interleave.
    /// With `onlyIfNone`, does nothing when an active key exists (startup of a new database).
    @discardableResult
    static func rotate(postgres: PostgresClient, kek: SymmetricKey, logger: Logger, onlyIfNone: Bool = false) async throws -> String? {
        let key = Curve25519.Signing.PrivateKey()
        let kid = SigningKey.thumbprint(key.publicKey)
        let sealed = Array(try AES.GCM.seal(key.rawRepresentation, using: kek, authenticating: Array(kid.utf8)).combined!)
        let rotated = try await Database.transaction(postgres, logger: logger) { connection -> Bool in
            try await connection.query("SELECT pg_advisory_xact_lock(\(rotationLock))", logger: logger)
            if onlyIfNone {
                let rows = try await connection.query("SELECT count(*) FROM signing_keys WHERE status = 'active'", logger: logger)
                for try await count in rows.decode(Int.self) where count > 0 { return false }
            }
            try await connection.query("UPDATE signing_keys SET status = 'retired', retired_at = now() WHERE status = 'previous'", logger: logger)
            try await connection.query("UPDATE signing_keys SET status = 'previous' WHERE status = 'active'", logger: logger)
            try await connection.query(
                """
                INSERT INTO signing_keys (kid, sealed_private_key, public_key, status)
                VALUES (\(kid), \(ByteBuffer(bytes: sealed)), \(ByteBuffer(bytes: Array(key.publicKey.rawRepresentation))), 'active')
                """,
                logger: logger
            )
            return true
        }
        guard rotated else { return nil }
        logger.info("new token-signing key", metadata: ["kid": "\(kid)"])
        return kid
    }

    /// At startup: create the first key of a new database, and prove the KEK opens the keys
    /// (fail now, not at the first login).
    static func prepare(postgres: PostgresClient, kek: SymmetricKey, logger: Logger) async throws {
        try await rotate(postgres: postgres, kek: kek, logger: logger, onlyIfNone: true)
        _ = try await load(postgres: postgres, kek: kek, publishing: .zero, logger: logger)
    }

    static let rotationLock: Int64 = 0x4D65_644C_6467_0081
}
