import Hummingbird
import MedLedgerCore

/// `GET /.well-known/jwks.json` (public): the key that signs subscription notifications, for
/// receivers to check `X-MedLedger-Signature` against.
struct NotificationKeysController {
    let signer: NotificationSigner

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.get(".well-known/jwks.json") { _, context in
            Response.json(try await signer.jwks(logger: context.logger).serialized(), contentType: "application/jwk-set+json")
        }
        return routes
    }
}
