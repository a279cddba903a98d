import Hummingbird
import MedLedgerCore

/// The FHIR base's public documents: the CapabilityStatement and SMART discovery (the same
/// document identity serves, as the SMART App Launch spec locates it under the FHIR base).
struct MetadataController {
    let base: String
    let issuer: String

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        let capability = CapabilityStatement.resource(base: base, issuer: issuer).serialized()
        let smart = AuthorizationServerMetadata.smartConfiguration(issuer: issuer).serialized()
        routes.get("metadata") { request, _ in
            try FHIRHTTP.requireJSON(request)
            return FHIRHTTP.jsonResponse(capability)
        }
        routes.get(".well-known/smart-configuration") { _, _ in Response.json(smart) }
        return routes
    }
}
