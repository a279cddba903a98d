import HTTPTypes
import Foundation
import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// search (GET and POST `_search`) and history (instance and type), answered as Bundles.
struct SearchController {
    let deps: RecordsDependencies

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.get("{type}") { request, context in try await search(request, context: context, form: nil) }
        routes.post("{type}/_search") { request, context in
            try await search(request, context: context, form: try await FHIRHTTP.searchForm(request, limit: deps.config.resourceMaxBytes))
        }
        routes.get("{type}/_history") { request, context in try await history(request, context: context, id: nil) }
        routes.get("{type}/{id}/_history") { request, context in try await history(request, context: context, id: try context.parameters.require("id")) }
        return routes
    }

    func search(_ request: Request, context: ServiceRequestContext, form: String?) async throws -> Response {
        let interaction = try FHIRInteraction(deps: deps, context: context, type: try context.parameters.require("type"))
        try FHIRHTTP.requireJSON(request)
        try interaction.caller.require(.search, on: interaction.type)
        let fields = try FHIRHTTP.searchFields(request, form: form)
        let search = try SearchRequest(type: interaction.type, fields: fields, strict: FHIRHTTP.strictHandling(request))
        let query = search.applied.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
        let access = await interaction.readAccess()
        let (page, included) = try await deps.postgres.withConnection { connection -> (SearchPage, [StoredVersion]) in
            let rule = access.rule(on: interaction.type, patients: search.pinnedPatients(base: deps.base))
            let page = try await SearchStore.search(search, rule: rule, base: deps.base, on: connection, logger: interaction.logger)
            guard search.includePatients, interaction.caller.scopes.contains(where: { $0.grants(.read, on: .patient) }) else { return (page, []) }
            var included: [StoredVersion] = []
            for patient in Set(page.matches.compactMap(\.patient)).sorted() {
                let rule = access.rule(on: .patient, patients: [patient])
                if let stored = try await ResourceReads.current(.patient, id: patient, rule: rule, on: connection, logger: interaction.logger),
                    !stored.deleted
                {
                    included.append(stored)
                }
            }
            return (page, included)
        }
        // The patients it concerns: those it is pinned to, whether found or not, and those found.
        let patients = (search.pinnedPatients(base: deps.base) ?? []).map(Optional.some) + (page.matches + included).map(\.patient)
        try await deps.audit.record(interaction.event(.searchType, query: query).perPatient(patients))
        var bundle = BundleWriter(type: "searchset", total: page.total, links: links(search, page: page))
        for stored in page.matches {
            bundle.entry(
                fullUrl: "\(deps.base)/\(stored.reference)", resource: try await resourceBytes(stored, interaction),
                extra: [("search", .object([("mode", .string("match"))]))])
        }
        for stored in included {
            bundle.entry(
                fullUrl: "\(deps.base)/\(stored.reference)", resource: try await interaction.body(of: stored),
                extra: [("search", .object([("mode", .string("include"))]))])
        }
        if access.consentUnavailable { bundle.warning(ReadAccess.consentUnavailableWarning) }
        return FHIRHTTP.jsonResponse(bundle.finish())
    }

    private func resourceBytes(_ stored: StoredVersion, _ interaction: FHIRInteraction) async throws -> [UInt8] {
        let body = try await interaction.body(of: stored)
        guard stored.type == .binary else { return body }
        return try await BinaryController(deps: deps).jsonWithData(body, stored: stored, logger: interaction.logger)
    }

    private func links(_ search: SearchRequest, page: SearchPage) -> [(relation: String, url: String)] {
        let keys = Array(zip(page.sortValues, page.matches.map(\.id)))
        return SearchLinks.searchset(
            base: "\(deps.base)/\(search.type.rawValue)", applied: search.applied, cursor: search.cursor, page: (page.hasNext, page.hasPrevious),
            first: keys.first.map { ($0.0, $0.1) }, last: keys.last.map { ($0.0, $0.1) })
    }

    func history(_ request: Request, context: ServiceRequestContext, id: String?) async throws -> Response {
        let interaction = try FHIRInteraction(deps: deps, context: context, type: try context.parameters.require("type"))
        try FHIRHTTP.requireJSON(request)
        try interaction.caller.require(id == nil ? .search : .read, on: interaction.type)
        let count = Int(min(try request.queryInteger("_count") ?? 20, 1000))
        let since: Int64? = try request.queryText("_since").map { text throws(Problem) in
            guard let range = FHIRDate.range(of: text, kind: .instant) else { throw Problem.badRequest("_since must be an instant, e.g. 2024-05-01T10:00:00Z") }
            return Micros.of(range.low)
        }
        let before: Int64? = try request.queryText("_cursor").map { text throws(Problem) in
            guard let cursor = SearchCursor(text), !cursor.after else { throw Problem.badRequest("_cursor is not one this server issued") }
            return cursor.sortValue
        }
        let kind: RecordsAuditEvent.Kind = id == nil ? .historyType : .historyInstance
        let entity = id.map { "\(interaction.type.rawValue)/\($0)" }
        let versions = try await interaction.auditingFailures(interaction.event(kind, entity: entity)) {
            let access = await interaction.readAccess()
            // A history Bundle has no place for a warning: without consent's answer, a whole-type
            // history the consent grants could widen is refused rather than silently cut short.
            if id == nil, access.consentUnavailable { throw ReadAccess.consentUnavailableProblem }
            return try await deps.postgres.withConnection { connection -> [StoredVersion] in
                var rule = access.rule(on: interaction.type)
                if let id { rule = try await access.rule(on: interaction.type, id: id, on: connection, logger: interaction.logger) }
                if let id, try await ResourceReads.current(interaction.type, id: id, rule: rule, on: connection, logger: interaction.logger) == nil {
                    throw access.hidden("\(interaction.type.rawValue)/\(id) is not known")
                }
                return try await ResourceReads.history(
                    interaction.type, id: id, rule: rule, since: since, beforeSeq: before, limit: count + 1, on: connection, logger: interaction.logger)
            }
        }
        let page = Array(versions.prefix(count))
        try await deps.audit.record(interaction.event(kind, entity: entity).perPatient(page.map(\.patient)))
        let path = "\(deps.base)/\(interaction.type.rawValue)\(id.map { "/\($0)" } ?? "")/_history"
        var query = ["_count=\(count)"]
        if let since = request.queryText("_since") { query.append("_since=" + SearchLinks.encode(since)) }
        var links = [(relation: "self", url: path + "?" + (query + (request.queryText("_cursor").map { ["_cursor=" + SearchLinks.encode($0)] } ?? [])).joined(separator: "&"))]
        if versions.count > count, let last = page.last {
            links.append(("next", path + "?" + (query + ["_cursor=" + SearchCursor(after: false, sortValue: last.seq, id: last.id).text]).joined(separator: "&")))
        }
        var bundle = BundleWriter(type: "history", total: nil, links: links)
        for stored in page {
            var resource: [UInt8]? = nil
            if !stored.deleted {
                do {
                    resource = try await resourceBytes(stored, interaction)
                } catch let problem as Problem where problem.status == .gone && id == nil {
                    // An erased patient's versions (data key destroyed) leave a type's history as
                    // they left its searches; one resource's own history answers 410 like its read.
                    continue
                }
            }
            bundle.historyEntry(
                fullUrl: "\(deps.base)/\(stored.reference)", resource: resource,
                type: stored.type.rawValue, id: stored.id, version: stored.version, lastUpdated: stored.lastUpdatedDate)
        }
        return FHIRHTTP.jsonResponse(bundle.finish())
    }
}
