import Hummingbird
import MedLedgerCore

/// The FHIR base's public document: the CapabilityStatement (no token needed).
struct MetadataController {
    let base: String
    let issuer: String

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        let capability = ConsentCapabilityStatement.resource(base: base, issuer: issuer).serialized()
        routes.get("metadata") { request, _ in
            try FHIRHTTP.requireJSON(request)
            return FHIRHTTP.jsonResponse(capability)
        }
        return routes
    }
}
