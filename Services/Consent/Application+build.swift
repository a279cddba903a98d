public import Configuration
import Foundation
public import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// Builds the consent service (Hummingbird template style): config → services → router → app.
public func buildApplication(reader: ConfigReader) async throws -> some ApplicationProtocol {
    try await buildApplication(reader: reader) { config, client in
        client.map { HTTPDirectory(client: $0, recordsURL: config.recordsURL, identityURL: config.common.identityURL) }
    }
}

/// `directory`: where patients and actors are looked up, given consent's own client when it has
/// credentials (tests pass a fixed set; nil skips the lookups, as development without service
/// credentials does).
func buildApplication(
    reader: ConfigReader, directory: (ConsentConfig, ServiceClient?) -> (any Directory)?
) async throws -> some ApplicationProtocol {
    var logger = Logger(label: "medledger-consent")
    let config = try ConsentConfig(reader: reader, logger: logger)
    logger.logLevel = config.common.logLevel
    let openAPIDocument = try OpenAPIDocument.load(from: .module)
    let postgres = PostgresClient(configuration: config.common.database.clientConfiguration, backgroundLogger: logger)
    let readiness = Readiness()
    let verifier = TokenVerifier(jwksURL: config.common.jwksURL, issuer: config.common.issuer, audience: config.common.audience, logger: logger)
    // Consent's own token for its calls to records, identity and audit.
    let client = config.common.serviceCredentials.map { credentials in
        ServiceClient(tokens: ServiceTokenClient(identityURL: config.common.identityURL, credentials: credentials, logger: logger))
    }
    let auditDelivery = client.map { AuditDelivery(postgres: postgres, client: $0, auditURL: config.common.auditURL, logger: logger).worker() }
    let deps = ConsentDependencies(
        postgres: postgres, config: config, directory: directory(config, client),
        outboxes: OutboxTransactions(postgres: postgres, workers: [auditDelivery]))

    let router = Router(context: ServiceRequestContext.self)
    router.addServiceMiddleware(fhirBase: "/fhir")
    router.addRoutes(OperationsController(postgres: postgres, readiness: readiness, openAPIDocument: openAPIDocument).endpoints)
    router.addRoutes(DecisionsController(deps: deps, verifier: verifier).endpoints)
    router.addRoutes(BreakGlassController(deps: deps, verifier: verifier).endpoints)
    let api = router.group()
    MethodGuard.register(
        on: api, paths: [("decisions", [.post]), ("grants", [.get]), ("break-glass", [.get, .post]), ("break-glass/{id}", [.get, .delete])])
    let fhir = router.group("fhir")
    fhir.addRoutes(MetadataController(capability: ConsentCapabilityStatement.resource(base: config.fhirBase, issuer: config.common.issuer)).endpoints)
    // Before the token check: metadata is public, so its 405 needs no token either.
    MethodGuard.register(on: fhir, paths: [("metadata", [.get])])
    fhir.add(middleware: BearerAuthMiddleware(verifier: verifier))
    fhir.addRoutes(ConsentSearchController(deps: deps).endpoints)
    fhir.addRoutes(ConsentController(deps: deps).endpoints)
    MethodGuard.register(
        on: fhir,
        paths: [
            ("Consent", [.get, .post]), ("Consent/_search", [.post]), ("Consent/{id}", [.get, .put, .delete]), ("Consent/{id}/_history", [.get]),
            ("Consent/{id}/_history/{vid}", [.get]),
        ])

    var app = Application(
        router: router,
        configuration: .init(address: .hostname(config.common.host, port: config.common.port), serverName: "medledger-consent"),
        logger: logger
    )
    app.addServices(postgres)
    if let auditDelivery { app.addServices(auditDelivery) }
    let startupLogger = logger
    app.beforeServerStarts {
        try await Migrator.migrate(ConsentMigrations.all, client: postgres, logger: startupLogger)
        readiness.markReady()
        startupLogger.info(
            "consent ready",
            metadata: ["fhir": "\(config.fhirBase)", "directory": "\(deps.directory == nil ? "none (lookups skipped)" : "records and identity")"])
    }
    return app
}
