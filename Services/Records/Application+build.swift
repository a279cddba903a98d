public import Configuration
import Foundation
import HTTPTypes
public import Hummingbird
import HummingbirdWebSocket
import Logging
import MedLedgerCore
import PostgresNIO

/// Builds the records service (Hummingbird template style): config → services → router → app.
public func buildApplication(reader: ConfigReader) async throws -> some ApplicationProtocol {
    var logger = Logger(label: "medledger-records")
    let config = try RecordsConfig(reader: reader, logger: logger)
    logger.logLevel = config.common.logLevel
    let openAPIDocument = try OpenAPIDocument.load(from: .module)
    let postgres = PostgresClient(configuration: config.common.database.clientConfiguration, backgroundLogger: logger)
    let readiness = Readiness()
    let verifier = TokenVerifier(jwksURL: config.common.jwksURL, issuer: config.common.issuer, audience: config.common.audience, logger: logger)
    let keys = DataKeyStore(postgres: postgres, keys: config.keys)
    // Records' own token for its calls to the ledger, consent and audit.
    let peers = config.common.serviceCredentials.map { credentials in
        ServiceClient(tokens: ServiceTokenClient(identityURL: config.common.identityURL, credentials: credentials, logger: logger))
    }
    let anchoring = peers.map { client in
        let delivery = LedgerAnchoring(
            postgres: postgres, ledger: LedgerAppend(client: client, ledger: config.ledger), batchLimit: config.anchorBatchLimit, logger: logger)
        return OutboxWorker(name: "ledger outbox", logger: logger) { try await delivery.deliverBatch() }
    }
    let auditDelivery = peers.map { AuditDelivery(postgres: postgres, client: $0, auditURL: config.common.auditURL, logger: logger).worker() }
    let subscriptions = SubscriptionStore(postgres: postgres, keys: keys)
    let signer = NotificationSigner(postgres: postgres, keys: keys)
    let sockets = SubscriptionSockets(postgres: postgres, logger: logger)
    let delivery = SubscriptionDelivery(
        postgres: postgres, keys: keys, store: subscriptions, access: DeliveryAccess(consent: peers, consentURL: config.consentURL), signer: signer,
        settings: config.subscriptions, base: config.fhirBase, development: config.common.mode == .development, wakeAudit: { auditDelivery?.wake() },
        logger: logger)
    // Polled often: a subscription backing off becomes due again between wakes.
    let notifications = OutboxWorker(name: "subscription notifications", pollInterval: .milliseconds(250), logger: logger) {
        try await delivery.deliverRound()
    }
    let outboxes = OutboxTransactions(postgres: postgres, workers: [anchoring, auditDelivery, notifications])
    let deps = RecordsDependencies(
        postgres: postgres, keys: keys, store: ResourceStore(postgres: postgres, keys: keys, base: config.fhirBase),
        audit: AuditLog(postgres: postgres, delivery: auditDelivery, logger: logger), config: config, ledger: peers, outboxes: outboxes,
        consent: ConsentGrantCache(client: peers, consentURL: config.consentURL, cacheSeconds: config.consentCacheSeconds, logger: logger))

    let router = Router(context: ServiceRequestContext.self)
    router.addServiceMiddleware(fhirBase: "/fhir")
    router.addRoutes(OperationsController(postgres: postgres, readiness: readiness, openAPIDocument: openAPIDocument).endpoints)
    router.addRoutes(NotificationKeysController(signer: signer).endpoints)
    let fhir = router.group("fhir")
    fhir.addRoutes(MetadataController(capability: CapabilityStatement.resource(base: config.fhirBase, issuer: config.common.issuer)).endpoints)
    fhir.addRoutes(SMARTDiscoveryController(issuer: config.common.issuer).endpoints)
    fhir.add(middleware: BearerAuthMiddleware(verifier: verifier))
    fhir.addRoutes(ProvenanceController(deps: deps).endpoints)
    fhir.addRoutes(SubscriptionController(deps: deps, subscriptions: subscriptions).endpoints)
    fhir.addRoutes(SearchController(deps: deps).endpoints)
    fhir.addRoutes(ResourceController(deps: deps).endpoints)
    fhir.addRoutes(VerifyController(deps: deps).endpoints)
    fhir.addRoutes(VerifyAllController(deps: deps).endpoints)
    fhir.addRoutes(EraseController(deps: deps).endpoints)
    MethodGuard.register(
        on: fhir,
        paths: [
            ("{type}", [.get, .post]), ("{type}/_search", [.post]), ("{type}/_history", [.get]), ("{type}/{id}", [.get, .put, .delete]),
            ("{type}/{id}/_history", [.get]), ("{type}/{id}/_history/{vid}", [.get]), ("metadata", [.get]),
            ("Subscription", [.get, .post]), ("Subscription/{id}", [.get, .put, .delete]), ("Subscription/{id}/$status", [.get]), ("websocket", [.get]),
        ])

    var app = Application(
        router: router,
        server: .http1WebSocketUpgrade { request, _, _ in
            // Only a subscriber's upgrade of the websocket path; anything else goes on to the
            // router, whose answer says what was wrong (401, 403, 426).
            guard request.path?.split(separator: "?").first.map(String.init) == SubscriptionSockets.path,
                let caller = await SubscriptionSockets.subscriber(request, verifier: verifier)
            else { return .dontUpgrade }
            return .upgrade([:], sockets.session(for: caller, subscriptions: subscriptions))
        },
        configuration: .init(address: .hostname(config.common.host, port: config.common.port), serverName: "medledger-records"),
        logger: logger
    )
    app.addServices(postgres)
    for worker in [anchoring, auditDelivery].compactMap({ $0 }) { app.addServices(worker) }
    app.addServices(notifications, sockets)
    let startupLogger = logger
    app.beforeServerStarts {
        try await Migrator.migrate(RecordsMigrations.all, client: postgres, logger: startupLogger)
        readiness.markReady()
        startupLogger.info("records ready", metadata: ["fhir": "\(config.fhirBase)", "kek": "\(config.keys.activeID)"])
    }
    return app
}

/// `medledger-records rotate-kek`: rewraps every data key under `RECORDS_ACTIVE_KEK`; the old
/// KEK can leave `RECORDS_KEKS` afterwards. Returns how many keys were rewrapped.
public func rotateKeyEncryptionKey(reader: ConfigReader) async throws -> (count: Int, kek: String) {
    let logger = Logger(label: "medledger-records")
    let config = try RecordsConfig(reader: reader, logger: logger)
    let postgres = PostgresClient(configuration: config.common.database.clientConfiguration, backgroundLogger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await postgres.run() }
        defer { group.cancelAll() }
        try await Migrator.migrate(RecordsMigrations.all, client: postgres, logger: logger)
        return (try await DataKeyStore.rewrapAll(postgres: postgres, keys: config.keys, logger: logger), config.keys.activeID)
    }
}
