package import Hummingbird

/// `GET metadata` of a FHIR base: its CapabilityStatement, public (no token).
package struct MetadataController {
    let capability: [UInt8]

    package init(capability: JSONValue) {
        self.capability = capability.serialized()
    }

    package var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        let capability = capability
        routes.get("metadata") { request, _ in
            try FHIRHTTP.requireJSON(request)
            return FHIRHTTP.jsonResponse(capability)
        }
        return routes
    }
}
