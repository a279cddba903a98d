import Hummingbird
import MedLedgerCore

/// SMART discovery under the FHIR base: the document identity serves, as the SMART App Launch
/// spec locates it beside the CapabilityStatement (public).
struct SMARTDiscoveryController {
    let issuer: String

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        let smart = AuthorizationServerMetadata.smartConfiguration(issuer: issuer).serialized()
        routes.get(".well-known/smart-configuration") { _, _ in Response.json(smart) }
        return routes
    }
}
