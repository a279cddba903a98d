public import Configuration
import Foundation
public import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// Builds the identity service (Hummingbird template style): config → services → router → app.
public func buildApplication(reader: ConfigReader) async throws -> some ApplicationProtocol {
    var logger = Logger(label: "medledger-identity")
    let config = try IdentityConfig(reader: reader, logger: logger)
    logger.logLevel = config.common.logLevel
    let openAPIDocument = try OpenAPIDocument.load(from: .module)
    let postgres = PostgresClient(configuration: config.common.database.clientConfiguration, backgroundLogger: logger)
    let readiness = Readiness()
    let keys = SigningKeyStore(postgres: postgres, kek: config.keyEncryptionKey, refresh: config.signingKeyRefresh, logger: logger)
    // Identity checks its own tokens against its own key store, not over HTTP: re-reading it is
    // cheap (the store caches), so an unknown kid is looked up at once.
    let verifier = TokenVerifier(
        source: "identity key store", issuer: config.issuer, audience: config.common.audience, logger: logger, refreshInterval: .zero
    ) { try await keys.jwks() }
    // Identity's audit events go to the audit service with a token identity issues to its own
    // client over HTTP, so delivery waits until this server listens.
    let serving = Readiness()
    let auditDelivery = config.common.serviceCredentials.map { credentials in
        let tokens = ServiceTokenClient(identityURL: config.common.identityURL, credentials: credentials, logger: logger)
        let delivery = AuditDelivery(postgres: postgres, client: ServiceClient(tokens: tokens), auditURL: config.common.auditURL, logger: logger)
        return OutboxWorker(name: "audit outbox", logger: logger) { serving.isReady ? try await delivery.deliverBatch() : 0 }
    }
    let outboxes = OutboxTransactions(postgres: postgres, workers: [auditDelivery])
    let hasher = PasswordHasher(cost: config.bcryptCost)
    let users = UserStore(postgres: postgres)
    let clients = ClientStore(postgres: postgres)
    let sessions = SessionStore(outboxes: outboxes, refreshLifetime: config.refreshTokenLifetime)
    let login = LoginService(
        outboxes: outboxes, users: users, sessions: sessions,
        throttle: LoginThrottle(limit: config.addressLimit, windowSeconds: config.addressWindowSeconds), hasher: hasher,
        lockoutThreshold: config.lockoutThreshold, lockoutSeconds: config.lockoutSeconds)
    let issuer = TokenIssuer(keys: keys, issuer: config.issuer, audience: config.common.audience, lifetime: config.accessTokenLifetime)
    let guardian = CallerGuard(sessions: sessions)

    let router = Router(context: ServiceRequestContext.self)
    router.addServiceMiddleware()
    router.addRoutes(OperationsController(postgres: postgres, readiness: readiness, openAPIDocument: openAPIDocument).endpoints)
    router.addRoutes(DiscoveryController(keys: keys, issuer: config.issuer).endpoints)
    router.addRoutes(
        AuthController(outboxes: outboxes, login: login, issuer: issuer, sessions: sessions, clients: clients, verifier: verifier).endpoints)
    router.addRoutes(
        UsersController(outboxes: outboxes, users: users, guardian: guardian, login: login, hasher: hasher, verifier: verifier).endpoints)
    router.addRoutes(ClientsController(outboxes: outboxes, clients: clients, guardian: guardian, verifier: verifier).endpoints)
    router.addRoutes(OrganizationsController(postgres: postgres, guardian: guardian, verifier: verifier).endpoints)

    var app = Application(
        router: router,
        configuration: .init(address: .hostname(config.common.host, port: config.common.port), serverName: "medledger-identity"),
        onServerRunning: { _ in
            serving.markReady()
            auditDelivery?.wake()
        },
        logger: logger
    )
    app.addServices(postgres)
    if let auditDelivery { app.addServices(auditDelivery) }
    let startupLogger = logger
    app.beforeServerStarts {
        try await Migrator.migrate(IdentityMigrations.all, client: postgres, logger: startupLogger)
        try await SigningKeyStore.prepare(postgres: postgres, kek: config.keyEncryptionKey, logger: startupLogger)
        try await Bootstrap.run(config: config, users: users, hasher: hasher, outboxes: outboxes, logger: startupLogger)
        readiness.markReady()
        startupLogger.info("identity ready", metadata: ["issuer": "\(config.issuer)"])
    }
    return app
}

/// `medledger-identity rotate-keys`: a new signing key, from another process than the server
/// (which picks it up within `SIGNING_KEY_REFRESH_MS`). Returns the new key's id.
public func rotateSigningKeys(reader: ConfigReader) async throws -> String {
    let logger = Logger(label: "medledger-identity")
    let config = try IdentityConfig(reader: reader, logger: logger)
    let postgres = PostgresClient(configuration: config.common.database.clientConfiguration, backgroundLogger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await postgres.run() }
        defer { group.cancelAll() }
        try await Migrator.migrate(IdentityMigrations.all, client: postgres, logger: logger)
        // Refuse to rotate with a KEK that cannot open the existing keys: the server could not either.
        try await SigningKeyStore.prepare(postgres: postgres, kek: config.keyEncryptionKey, logger: logger)
        return try await SigningKeyStore.rotate(postgres: postgres, kek: config.keyEncryptionKey, logger: logger)!
    }
}
