public import Configuration
import Foundation
public import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// Builds the ledger service (Hummingbird template style): config → services → router → app.
public func buildApplication(reader: ConfigReader) async throws -> some ApplicationProtocol {
    let config = try LedgerConfig(reader: reader, logger: Logger(label: "medledger-ledger"))
    var logger = Logger(label: "medledger-ledger")
    logger.logLevel = config.common.logLevel
    let openAPIDocument = try OpenAPIDocument.load(from: .module)
    let postgres = PostgresClient(configuration: config.common.database.clientConfiguration, backgroundLogger: logger)
    let readiness = Readiness()
    let tiles = TileStore(postgres: postgres)
    let queries = LedgerQueries(postgres: postgres)
    let sequencer = Sequencer(postgres: postgres, tiles: tiles, batchLimit: config.batchLimit, logger: logger)
    let publisher = CheckpointPublisher(
        postgres: postgres, tiles: tiles, signer: config.signer, interval: config.checkpointInterval, readiness: readiness, logger: logger
    )
    let verifier = TokenVerifier(jwksURL: config.common.jwksURL, issuer: config.common.issuer, audience: config.common.audience, logger: logger)

    let router = Router(context: ServiceRequestContext.self)
    router.addServiceMiddleware()
    router.addRoutes(OperationsController(postgres: postgres, readiness: readiness, openAPIDocument: openAPIDocument).endpoints)
    router.addRoutes(ProofsController(publisher: publisher, tiles: tiles, queries: queries).endpoints)
    router.addRoutes(TilesController(tiles: tiles, queries: queries).endpoints)
    router.addRoutes(EntriesController(sequencer: sequencer, publisher: publisher, tiles: tiles, config: config, verifier: verifier).endpoints)
    router.addRoutes(CheckController(check: TreeCheck(postgres: postgres, verifier: config.signer.verifier), verifier: verifier).endpoints)

    var app = Application(
        router: router,
        configuration: .init(address: .hostname(config.common.host, port: config.common.port), serverName: "medledger-ledger"),
        logger: logger
    )
    // Order matters: services shut down in reverse, so Postgres outlives the sequencer and publisher.
    app.addServices(postgres, sequencer, publisher)
    let startupLogger = logger
    app.beforeServerStarts {
        try await Migrator.migrate(LedgerMigrations.all, client: postgres, logger: startupLogger)
        readiness.markReady()
        startupLogger.info("ledger ready", metadata: ["origin": "\(config.origin)", "vkey": "\(config.signer.verifier.vkey)"])
    }
    return app
}
