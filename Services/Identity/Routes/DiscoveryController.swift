import Hummingbird
import MedLedgerCore

/// `/.well-known/*`: the JWKS and the discovery documents (no token needed).
struct DiscoveryController {
    let keys: SigningKeyStore
    let issuer: String

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.get("/.well-known/jwks.json") { _, _ in
            // Short caching: verifiers refetch on an unknown kid anyway, so rotation is not delayed.
            var response = Response.json(Array(try await keys.jwks().utf8))
            response.headers[.cacheControl] = "public, max-age=60"
            return response
        }
        let openID = AuthorizationServerMetadata.openIDConfiguration(issuer: issuer).serialized()
        let smart = AuthorizationServerMetadata.smartConfiguration(issuer: issuer).serialized()
        routes.get("/.well-known/openid-configuration") { _, _ in Response.json(openID) }
        routes.get("/.well-known/smart-configuration") { _, _ in Response.json(smart) }
        return routes
    }
}
