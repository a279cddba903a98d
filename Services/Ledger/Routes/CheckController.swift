import Hummingbird
import Logging
import MedLedgerCore

/// `POST /check`: the ledger's own consistency check, for the services that append and for admins.
struct CheckController {
    let check: TreeCheck
    let verifier: TokenVerifier

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.add(middleware: BearerAuthMiddleware(verifier: verifier, anyScope: [Scope.ledgerAppend, Scope.verifyAll]))
        routes.post("/check") { _, context in try await run(context: context) }
        return routes
    }

    func run(context: ServiceRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        let report = try await check.run(logger: context.logger)
        var metadata: Logger.Metadata = [
            "treeSize": "\(report.treeSize)", "leaves": "\(report.leavesChecked)", "checkpoints": "\(report.checkpointsChecked)",
            "tiles": "\(report.tilesChecked)", "duration": "\(ContinuousClock.now - started)",
        ]
        if report.ok {
            context.logger.info("ledger check passed", metadata: metadata)
        } else {
            // Kinds and positions only: findings never carry entry data.
            metadata["findings"] = "\(report.findingsTotal)"
            metadata["kinds"] = "\(report.counts.map { "\($0.key.rawValue)=\($0.value)" }.sorted().joined(separator: " "))"
            metadata["first"] = "\(report.findings[0].detail)"
            context.logger.error("ledger check found inconsistencies", metadata: metadata)
        }
        return Response.json(report.json.serialized())
    }
}
