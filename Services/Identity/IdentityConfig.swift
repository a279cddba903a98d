import Configuration
import Crypto
import Foundation
import Logging
import MedLedgerCore

/// Identity's settings on top of the common ones (names in the README and openapi/identity.yaml).
struct IdentityConfig: Sendable {
    var common: CommonConfig
    /// Encrypts the stored token-signing keys.
    var keyEncryptionKey: SymmetricKey
    var bootstrapAdmin: (username: String, password: String)?
    var bcryptCost: Int
    var accessTokenLifetime: Int
    var refreshTokenLifetime: Int
    var lockoutThreshold: Int
    var lockoutSeconds: Int
    var addressLimit: Int
    var addressWindowSeconds: Int
    /// How soon a running identity notices keys rotated by `rotate-keys` in another process.
    var signingKeyRefresh: Duration
    var clients: [ConfiguredClient]

    var issuer: String { common.issuer }

    init(reader: ConfigReader, logger: Logger) throws(ConfigError) {
        common = try CommonConfig(reader: reader, defaultPort: 8081, defaultDatabase: "identity")
        let production = common.mode == .production
        if let kek = reader.text("identity.kek", secret: true) {
            guard let bytes = Base64.decode(kek), bytes.count == 32 else {
                throw ConfigError("IDENTITY_KEK must be the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")
            }
            keyEncryptionKey = SymmetricKey(data: bytes)
        } else if production {
            throw ConfigError("IDENTITY_KEK is required in production mode (generate one with `openssl rand -base64 32`)")
        } else {
            keyEncryptionKey = SymmetricKey(size: .bits256)
            logger.warning("IDENTITY_KEK not set: signing keys are sealed with a throwaway key (development mode only)")
        }
        let adminUser = reader.text("medledger.admin.user", default: "admin")!.lowercased()
        if let password = reader.text("medledger.admin.password", secret: true) {
            do {
                try PasswordPolicy.check(password, username: adminUser)
            } catch {
                guard !production else { throw ConfigError("MEDLEDGER_ADMIN_PASSWORD is too weak: \(error.detail ?? "")") }
                logger.warning("MEDLEDGER_ADMIN_PASSWORD is weak (accepted in development mode only)", metadata: ["why": "\(error.detail ?? "")"])
            }
            do {
                try Username.validate(adminUser)
            } catch {
                throw ConfigError("MEDLEDGER_ADMIN_USER: \(error.detail ?? "")")
            }
            bootstrapAdmin = (adminUser, password)
        } else if production {
            throw ConfigError("MEDLEDGER_ADMIN_PASSWORD is required in production mode (the first admin is created from it)")
        } else {
            bootstrapAdmin = nil
            logger.warning("MEDLEDGER_ADMIN_PASSWORD not set: no admin is created on an empty database")
        }
        bcryptCost = try reader.integer("bcrypt.cost", default: 12, range: 4...31)
        if production && bcryptCost < 10 {
            throw ConfigError("BCRYPT_COST=\(bcryptCost) is too low for production mode (use 10 or more)")
        }
        accessTokenLifetime = try reader.integer("access.token.ttl.seconds", default: 900, range: 60...3600)
        refreshTokenLifetime = try reader.integer("refresh.token.ttl.seconds", default: 28800, range: 300...(30 * 86400))
        lockoutThreshold = try reader.integer("lockout.threshold", default: 5, range: 1...100)
        lockoutSeconds = try reader.integer("lockout.seconds", default: 900, range: 1...86400)
        addressLimit = try reader.integer("login.address.limit", default: 20, range: 1...10_000_000)
        addressWindowSeconds = try reader.integer("login.address.window.seconds", default: 300, range: 1...86400)
        signingKeyRefresh = .milliseconds(try reader.integer("signing.key.refresh.ms", default: 5000, range: 100...600_000))
        clients = try ConfiguredClient.parseList(reader.text("identity.clients", secret: true) ?? "", production: production)
        if common.serviceCredentials == nil {
            if production {
                throw ConfigError(
                    "OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET are required in production mode: identity delivers its audit events to the audit service with a token for its own client (register it in IDENTITY_CLIENTS with medledger/audit.write)"
                )
            }
            logger.warning("OAUTH_CLIENT_ID not set: audit events stay in the outbox (development mode only)")
        }
    }
}
