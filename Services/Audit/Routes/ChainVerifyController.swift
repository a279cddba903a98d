import Hummingbird
import MedLedgerCore

/// `GET /chain/verify?from=&to=` (admins): recomputes the chain between two events (1-based,
/// inclusive; the whole chain by default) and checks its anchors in the ledger. Tampering is
/// an answer (200, `valid: false`, the problems), not an error.
struct ChainVerifyController {
    let verification: ChainVerification
    let verifier: TokenVerifier

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.add(middleware: BearerAuthMiddleware(verifier: verifier, anyRole: [Role.admin.rawValue]))
        routes.get("chain/verify") { request, context in
            let from = try request.queryInteger("from", in: 1...Int64.max) ?? 1
            let to = try request.queryInteger("to", in: 1...Int64.max)
            return Response.json(try await verification.verify(from: from, to: to, logger: context.logger).json.serialized())
        }
        return routes
    }
}
