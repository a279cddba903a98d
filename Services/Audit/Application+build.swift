public import Configuration
import Foundation
public import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// Builds the audit service (Hummingbird template style): config → services → router → app.
public func buildApplication(reader: ConfigReader) async throws -> some ApplicationProtocol {
    var logger = Logger(label: "medledger-audit")
    let config = try AuditConfig(reader: reader, logger: logger)
    logger.logLevel = config.common.logLevel
    let openAPIDocument = try OpenAPIDocument.load(from: .module)
    let postgres = PostgresClient(configuration: config.common.database.clientConfiguration, backgroundLogger: logger)
    let readiness = Readiness()
    let verifier = TokenVerifier(jwksURL: config.common.jwksURL, issuer: config.common.issuer, audience: config.common.audience, logger: logger)
    let deps = AuditDependencies(postgres: postgres, config: config)

    let router = Router(context: ServiceRequestContext.self)
    router.addServiceMiddleware(fhirBase: "/fhir")
    router.addRoutes(OperationsController(postgres: postgres, readiness: readiness, openAPIDocument: openAPIDocument).endpoints)

    // The write side: ingest into the chain, its verification, and its anchors in the ledger
    // (with audit's own token, when it has credentials).
    let writer = ChainWriter(postgres: postgres, batchLimit: config.batchLimit, logger: logger)
    let verification = ChainVerification(
        postgres: postgres, ledger: LedgerEntryScan(ledgerURL: config.ledger.url), ledgerVerifier: config.ledger.verifier)
    router.addRoutes(EventsController(writer: writer, config: config, verifier: verifier).endpoints)
    router.addRoutes(ChainVerifyController(verification: verification, verifier: verifier).endpoints)
    MethodGuard.register(on: router.group(), paths: [("events", [.post]), ("chain/verify", [.get])])
    let anchoring = config.common.serviceCredentials.map { credentials in
        let client = ServiceClient(tokens: ServiceTokenClient(identityURL: config.common.identityURL, credentials: credentials, logger: logger))
        return ChainAnchoring(
            postgres: postgres, ledger: LedgerAppend(client: client, ledger: config.ledger), interval: config.anchorInterval, logger: logger)
    }

    // The read side: FHIR AuditEvent search and read, and the public CapabilityStatement.
    let fhir = router.group("fhir")
    fhir.addRoutes(MetadataController(capability: AuditCapabilityStatement.resource(base: config.fhirBase, issuer: config.common.issuer)).endpoints)
    // Before the token check: metadata is public, so its 405 needs no token either.
    MethodGuard.register(on: fhir, paths: [("metadata", [.get])])
    fhir.add(middleware: BearerAuthMiddleware(verifier: verifier))
    fhir.addRoutes(AuditEventController(deps: deps).endpoints)
    MethodGuard.register(on: fhir, paths: [("AuditEvent", [.get]), ("AuditEvent/_search", [.post]), ("AuditEvent/{id}", [.get])])

    var app = Application(
        router: router,
        configuration: .init(address: .hostname(config.common.host, port: config.common.port), serverName: "medledger-audit"),
        logger: logger
    )
    app.addServices(postgres)
    app.addServices(writer)
    if let anchoring { app.addServices(anchoring) }
    let startupLogger = logger
    app.beforeServerStarts {
        try await Migrator.migrate(AuditMigrations.all, client: postgres, logger: startupLogger)
        readiness.markReady()
        startupLogger.info("audit ready", metadata: ["fhir": "\(config.fhirBase)"])
    }
    return app
}
