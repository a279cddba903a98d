import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// create, read, vread, update, delete and instance history of Consents (FHIR http.html).
/// A consent the caller may not see answers 404, as if it did not exist.
struct ConsentController {
    let deps: ConsentDependencies

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.post("Consent") { request, context in try await create(request, context: context) }
        routes.get("Consent/{id}") { request, context in try await read(request, context: context) }
        routes.get("Consent/{id}/_history/{vid}") { request, context in try await vread(request, context: context) }
        routes.get("Consent/{id}/_history") { request, context in try await history(request, context: context) }
        routes.put("Consent/{id}") { request, context in try await update(request, context: context) }
        routes.delete("Consent/{id}") { request, context in try await delete(request, context: context) }
        return routes
    }

    func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let caller = try Caller(context: context)
        try FHIRHTTP.requireJSON(request)
        try caller.require(.create, onResource: ConsentAccess.resourceType)
        try FHIRHTTP.requireJSONBody(request)
        let resource = try await FHIRHTTP.resourceBody(request, type: ConsentAccess.resourceType, limit: ConsentConfig.resourceMaxBytes)
        let rules = ConsentWriteRules(deps: deps, caller: caller, logger: context.logger)
        let grant = try await rules.check(resource, previous: nil)
        let id = UUID().uuidString.lowercased()
        let now = ResourceStamp.now()
        let stored = try await deps.outboxes.transaction(logger: context.logger) { connection in
            try await ConsentStore.write(
                grant, body: rules.stored(resource, id: id, version: 1, lastUpdated: now), id: id, version: 1, lastUpdated: Micros.of(now),
                recordedBy: caller.author,
                event: ConsentAuditEvent(kind: .create, caller: caller, patient: grant.patient, consent: "Consent/\(id)/_history/1"),
                on: connection, logger: context.logger)
        }
        return writeResponse(stored, status: .created, request: request)
    }

    func read(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let (_, access, id) = try target(.read, request: request, context: context)
        let stored = try await deps.postgres.withConnection { connection in
            try await ConsentStore.current(id, access: access, on: connection, logger: context.logger)
        }
        guard let stored else { throw Problem.notFound("Consent/\(id) is not known") }
        return try resourceResponse(stored)
    }

    func vread(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let (_, access, id) = try target(.read, request: request, context: context)
        guard let version = Int(try context.parameters.require("vid")), version > 0 else {
            throw Problem.notFound("Consent/\(id) has no such version")
        }
        let stored = try await deps.postgres.withConnection { connection in
            try await ConsentStore.version(id, version, access: access, on: connection, logger: context.logger)
        }
        guard let stored else { throw Problem.notFound("Consent/\(id)/_history/\(version) is not known") }
        return try resourceResponse(stored)
    }

    func history(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let (_, access, id) = try target(.read, request: request, context: context)
        let count = Int(min(try request.queryInteger("_count") ?? Int64(ConsentSearchRequest.defaultCount), Int64(ConsentSearchRequest.maximumCount)))
        let since: Int64? = try request.queryText("_since").map { text throws(Problem) in
            guard let range = FHIRDate.range(of: text, kind: .instant) else {
                throw Problem.badRequest("_since must be an instant, e.g. 2026-05-01T10:00:00Z")
            }
            return Micros.of(range.low)
        }
        let before: Int? = try request.queryText("_cursor").map { text throws(Problem) in
            guard let cursor = SearchCursor(text), !cursor.after, cursor.id == id, let version = Int(exactly: cursor.sortValue) else {
                throw Problem.badRequest("_cursor is not one this server issued")
            }
            return version
        }
        let versions = try await deps.postgres.withConnection { connection -> [StoredConsent] in
            guard try await ConsentStore.current(id, access: access, on: connection, logger: context.logger) != nil else {
                throw Problem.notFound("Consent/\(id) is not known")
            }
            return try await ConsentStore.history(
                id, access: access, since: since, before: before, limit: count + 1, on: connection, logger: context.logger)
        }
        let page = versions.prefix(count)
        let path = "\(deps.base)/Consent/\(id)/_history"
        var query = [("_count", String(count))]
        if let since = request.queryText("_since") { query.append(("_since", since)) }
        let selfQuery = query + (request.queryText("_cursor").map { [("_cursor", $0)] } ?? [])
        var links = [(relation: "self", url: Self.url(path, selfQuery))]
        if versions.count > count, let last = page.last {
            links.append(("next", Self.url(path, query + [("_cursor", SearchCursor(after: false, sortValue: Int64(last.version), id: id).text)])))
        }
        var bundle = BundleWriter(type: "history", total: nil, links: links)
        for stored in page {
            bundle.historyEntry(
                fullUrl: "\(deps.base)/\(stored.reference)", resource: stored.body.map { Array($0.utf8) }, type: ConsentAccess.resourceType, id: id,
                version: stored.version, lastUpdated: stored.lastUpdatedDate)
        }
        return FHIRHTTP.jsonResponse(bundle.finish())
    }

    func update(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let (caller, access, id) = try target(.update, request: request, context: context)
        try FHIRHTTP.requireJSONBody(request)
        let resource = try await FHIRHTTP.resourceBody(request, type: ConsentAccess.resourceType, limit: ConsentConfig.resourceMaxBytes)
        guard resource["id"]?.stringValue == id else {
            throw Problem.badRequest("the resource's id must be present and equal to the id in the URL (\(id))")
        }
        let expected = try FHIRHTTP.ifMatch(request)
        // Checked against the current version before the transaction: the lookups of a changed
        // patient or actor are HTTP calls, which must not hold a row lock.
        let previous = try await deps.postgres.withConnection { connection in
            try await Self.writable(id, access: access, expected: expected, lock: false, on: connection, logger: context.logger)
        }
        let rules = ConsentWriteRules(deps: deps, caller: caller, logger: context.logger)
        let grant = try await rules.check(resource, previous: previous)
        let now = ResourceStamp.now()
        let stored = try await deps.outboxes.transaction(logger: context.logger) { connection in
            let current = try await Self.writable(id, access: access, expected: expected, lock: true, on: connection, logger: context.logger)
            // A concurrent write since the check: its patient or actor were not the ones looked up against.
            guard current.version == previous.version else {
                throw Problem(.conflict, "Consent/\(id) changed while this update was checked (now version \(current.version)); retry")
            }
            let version = current.version + 1
            return try await ConsentStore.write(
                grant, body: rules.stored(resource, id: id, version: version, lastUpdated: now), id: id, version: version,
                lastUpdated: Micros.of(now),
                recordedBy: caller.author,
                event: ConsentAuditEvent(kind: .update, caller: caller, patient: grant.patient, consent: "Consent/\(id)/_history/\(version)"),
                on: connection, logger: context.logger)
        }
        return writeResponse(stored, status: .ok, request: request)
    }

    func delete(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let (caller, access, id) = try target(.delete, request: request, context: context)
        let expected = try FHIRHTTP.ifMatch(request)
        let deleted = try await deps.outboxes.transaction(logger: context.logger) { connection -> StoredConsent in
            guard let current = try await ConsentStore.current(id, access: access, lock: true, on: connection, logger: context.logger) else {
                throw Problem.notFound("Consent/\(id) is not known")
            }
            if let expected, expected != current.version {
                throw Problem(.preconditionFailed, "If-Match names version \(expected) but the current version is \(current.version)")
            }
            // Deleting what is already deleted changes nothing (FHIR: delete is idempotent).
            if current.deleted { return current }
            let event = ConsentAuditEvent(
                kind: .delete, caller: caller, patient: current.patient, consent: "Consent/\(id)/_history/\(current.version + 1)")
            return try await ConsentStore.delete(
                current, lastUpdated: Micros.of(ResourceStamp.now()), recordedBy: caller.author, event: event, on: connection, logger: context.logger)
        }
        return Response(status: .noContent, headers: [.eTag: "W/\"\(deleted.version)\""])
    }

    /// The caller, its access and the id in the path of a read or write of one consent. A caller
    /// who may see no consent at all gets the 404 of a consent it may not see, before any
    /// check of its scopes could tell the two apart.
    private func target(_ interaction: Interaction, request: Request, context: ServiceRequestContext) throws -> (Caller, ConsentAccess, String) {
        let caller = try Caller(context: context)
        let id = try context.parameters.require("id")
        try FHIRHTTP.requireJSON(request)
        let access = ConsentAccess(caller)
        // Not an id at all (e.g. a NUL, which PostgreSQL text cannot hold): no such consent either.
        guard access != .none, FHIRReference.isValidID(id) else { throw Problem.notFound("Consent/\(id) is not known") }
        try caller.require(interaction, onResource: ConsentAccess.resourceType)
        return (caller, access, id)
    }

    /// The current version of `id` as an update may replace it: visible (else 404), not deleted
    /// (410), and the version `If-Match` names (412).
    private static func writable(
        _ id: String, access: ConsentAccess, expected: Int?, lock: Bool, on connection: PostgresConnection, logger: Logger
    ) async throws -> StoredConsent {
        guard let current = try await ConsentStore.current(id, access: access, lock: lock, on: connection, logger: logger) else {
            throw Problem.notFound("Consent/\(id) is not known (update cannot create consents: POST them)")
        }
        if current.deleted { throw Problem(.gone, "Consent/\(id) was deleted", headers: [.eTag: "W/\"\(current.version)\""]) }
        if let expected, expected != current.version {
            throw Problem(.preconditionFailed, "If-Match names version \(expected) but the current version is \(current.version)")
        }
        return current
    }

    private func resourceResponse(_ stored: StoredConsent) throws(Problem) -> Response {
        guard let body = stored.body else {
            throw Problem(.gone, "\(stored.reference) was deleted (version \(stored.version))", headers: [.eTag: "W/\"\(stored.version)\""])
        }
        let headers = FHIRHTTP.versionHeaders(version: stored.version, lastUpdated: stored.lastUpdatedDate, location: nil)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    private func writeResponse(_ stored: StoredConsent, status: HTTPResponse.Status, request: Request) -> Response {
        let headers = FHIRHTTP.versionHeaders(
            version: stored.version, lastUpdated: stored.lastUpdatedDate, location: "\(deps.base)/\(stored.versionReference)")
        return FHIRHTTP.writeResponse(
            body: Array((stored.body ?? "").utf8), reference: stored.versionReference, headers: headers, status: status, request: request)
    }

    static func url(_ path: String, _ query: [(String, String)]) -> String {
        path + "?" + query.map { SearchLinks.encode($0.0) + "=" + SearchLinks.encode($0.1) }.joined(separator: "&")
    }
}
