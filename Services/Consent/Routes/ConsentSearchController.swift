import Foundation
import Hummingbird
import MedLedgerCore
import PostgresNIO

/// Consent search (GET and POST `_search`), answered as a searchset Bundle.
struct ConsentSearchController {
    let deps: ConsentDependencies

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.get("Consent") { request, context in try await search(request, context: context, form: nil) }
        routes.post("Consent/_search") { request, context in
            try await search(request, context: context, form: try await FHIRHTTP.searchForm(request, limit: ConsentConfig.resourceMaxBytes))
        }
        return routes
    }

    func search(_ request: Request, context: ServiceRequestContext, form: String?) async throws -> Response {
        let caller = try Caller(context: context)
        try FHIRHTTP.requireJSON(request)
        try caller.require(.search, onResource: ConsentAccess.resourceType)
        let fields = try FHIRHTTP.searchFields(request, form: form)
        let search = try ConsentSearchRequest(fields: fields, strict: FHIRHTTP.strictHandling(request), base: deps.base)
        let page = try await deps.postgres.withConnection { connection in
            try await ConsentSearchStore.search(search, access: ConsentAccess(caller), on: connection, logger: context.logger)
        }
        let bundle = page.searchset(
            type: ConsentAccess.resourceType, base: deps.base, controls: search.controls, ignored: search.ignored,
            key: { ($0.lastUpdated, $0.id) }, resource: { Array($0.body.utf8) })
        return FHIRHTTP.jsonResponse(bundle)
    }
}
