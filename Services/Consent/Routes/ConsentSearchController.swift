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
        let links = SearchLinks.searchset(
            base: "\(deps.base)/Consent", applied: search.controls.applied, cursor: search.controls.cursor, page: (page.hasNext, page.hasPrevious),
            first: page.matches.first.map { ($0.lastUpdated, $0.id) }, last: page.matches.last.map { ($0.lastUpdated, $0.id) })
        var bundle = BundleWriter(type: "searchset", total: page.total, links: links)
        for match in page.matches {
            bundle.entry(
                fullUrl: "\(deps.base)/Consent/\(match.id)", resource: Array(match.body.utf8),
                extra: [("search", .object([("mode", .string("match"))]))])
        }
        if !search.ignored.isEmpty {
            // Lenient handling drops unknown parameters; the FHIR search spec asks to say which.
            let warning = FHIRIssue(
                code: "not-supported", diagnostics: "ignored unknown search parameters: \(search.ignored.joined(separator: ", "))")
            let outcome = JSONValue.object([("resourceType", .string("OperationOutcome")), ("issue", .array([warning.json(severity: "warning")]))])
            bundle.entry(
                fullUrl: "urn:uuid:\(UUID().uuidString.lowercased())", resource: outcome.serialized(),
                extra: [("search", .object([("mode", .string("outcome"))]))])
        }
        return FHIRHTTP.jsonResponse(bundle.finish())
    }
}
