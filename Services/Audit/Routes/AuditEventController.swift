import Hummingbird
import MedLedgerCore
import PostgresNIO

/// AuditEvent search (GET and POST `_search`, a searchset Bundle) and read. Search is for
/// admins (everything) and patients (events about themselves); anyone else gets a 403. A read
/// of an event the caller may not see is a 404, as if it did not exist (as in consent).
struct AuditEventController {
    let deps: AuditDependencies

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.get("AuditEvent") { request, context in try await search(request, context: context, form: nil) }
        routes.post("AuditEvent/_search") { request, context in
            try await search(request, context: context, form: try await FHIRHTTP.searchForm(request, limit: Self.formMaxBytes))
        }
        routes.get("AuditEvent/{id}") { request, context in try await read(request, context: context) }
        return routes
    }

    /// A search form is a query string: this is generous.
    static let formMaxBytes = 64 * 1024

    func search(_ request: Request, context: ServiceRequestContext, form: String?) async throws -> Response {
        let caller = try Caller(context: context)
        try FHIRHTTP.requireJSON(request)
        try caller.require(.search, onResource: AuditAccess.resourceType)
        let access = AuditAccess(caller)
        guard access != .none else { throw Problem.forbidden("the audit trail is for admins, and for patients about themselves") }
        let fields = try FHIRHTTP.searchFields(request, form: form)
        let search = try AuditSearchRequest(fields: fields, strict: FHIRHTTP.strictHandling(request), base: deps.base)
        let page = try await deps.postgres.withConnection { connection in
            try await AuditSearchStore.search(search, access: access, on: connection, logger: context.logger)
        }
        let bundle = page.searchset(
            type: AuditAccess.resourceType, base: deps.base, controls: search.controls, ignored: search.ignored,
            key: { ($0.recorded, String($0.seq)) }, resource: { Array($0.event.utf8) })
        return FHIRHTTP.jsonResponse(bundle)
    }

    func read(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let caller = try Caller(context: context)
        let id = try context.parameters.require("id")
        try FHIRHTTP.requireJSON(request)
        let access = AuditAccess(caller)
        // Ids are chain sequence numbers: anything else names no event.
        guard access != .none, let seq = AuditSearchRequest.seq(id) else { throw Problem.notFound("AuditEvent/\(id) is not known") }
        try caller.require(.read, onResource: AuditAccess.resourceType)
        let event = try await deps.postgres.withConnection { connection in
            try await AuditSearchStore.event(seq, access: access, on: connection, logger: context.logger)
        }
        guard let event else { throw Problem.notFound("AuditEvent/\(id) is not known") }
        return FHIRHTTP.jsonResponse(Array(event.utf8))
    }
}
