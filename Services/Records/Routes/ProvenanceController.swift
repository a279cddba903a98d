import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MedLedgerCore

/// Provenance (read and search by `target` or `patient`): one per stored version, derived from
/// the version and its ledger anchor. Read-only: it is written by records, never by clients.
struct ProvenanceController {
    let deps: RecordsDependencies
    static let type = "Provenance"

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.get("Provenance") { request, context in try await search(request, context: context, form: nil) }
        routes.post("Provenance/_search") { request, context in
            try await search(request, context: context, form: try await FHIRHTTP.searchForm(request, limit: deps.config.resourceMaxBytes))
        }
        routes.get("Provenance/{id}") { request, context in try await read(request, context: context) }
        let readOnly = Problem(.methodNotAllowed, "records writes Provenance itself, one per stored version", headers: [.allow: "GET"])
        routes.post("Provenance") { _, _ -> Response in throw readOnly }
        routes.put("Provenance/{id}") { _, _ -> Response in throw readOnly }
        routes.delete("Provenance/{id}") { _, _ -> Response in throw readOnly }
        return routes
    }

    func read(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let caller = try Caller(context: context)
        try FHIRHTTP.requireJSON(request)
        try caller.require(.read, onResource: Self.type)
        let id = try context.parameters.require("id")
        let event = RecordsAuditEvent(kind: .read, caller: caller, type: Self.type, entity: "Provenance/\(id)")
        let access = await ReadAccess.resolve(for: caller, grants: deps.consent)
        guard let seq = Int64(id), seq > 0, String(seq) == id,
            let found = try await ProvenanceStore.versions(.init(seq: seq), access: access, limit: 1, postgres: deps.postgres, logger: context.logger).first
        else {
            let problem = access.hidden("Provenance/\(id) is not known")
            var failed = event
            failed.failure = Int(problem.status.code)
            try await deps.audit.record(failed)
            throw problem
        }
        var audited = event
        audited.patient = found.type == .practitioner ? nil : found.patient
        try await deps.audit.record(audited)
        let resource = ProvenanceResource.make(found)
        var headers: HTTPFields = [.contentType: FHIRHTTP.contentType]
        headers[.eTag] = "W/\"\(resource["meta"]?["versionId"]?.stringValue ?? "1")\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: .init(bytes: resource.serialized())))
    }

    func search(_ request: Request, context: ServiceRequestContext, form: String?) async throws -> Response {
        let caller = try Caller(context: context)
        try FHIRHTTP.requireJSON(request)
        try caller.require(.search, onResource: Self.type)
        let fields = try FHIRHTTP.searchFields(request, form: form)
        let (filter, count, applied) = try Self.parse(fields, base: deps.base)
        let query = applied.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
        let access = await ReadAccess.resolve(for: caller, grants: deps.consent)
        let found = try await ProvenanceStore.versions(filter, access: access, limit: count + 1, postgres: deps.postgres, logger: context.logger)
        let page = found.prefix(count)
        let patients = page.map { $0.type == .practitioner ? nil : $0.patient }
        try await deps.audit.record(RecordsAuditEvent(kind: .searchType, caller: caller, type: Self.type, query: query).perPatient(patients))
        let base = "\(deps.base)/Provenance"
        func url(_ extra: [(name: String, value: String)]) -> String {
            base + "?" + (applied + extra).map { SearchLinks.encode($0.name) + "=" + SearchLinks.encode($0.value) }.joined(separator: "&")
        }
        var links = [(relation: "self", url: url(filter.beforeSeq.map { [("_cursor", String($0))] } ?? []))]
        if found.count > count, let last = page.last { links.append(("next", url([("_cursor", String(last.seq))]))) }
        var bundle = BundleWriter(type: "searchset", total: nil, links: links)
        for version in page {
            bundle.entry(
                fullUrl: "\(base)/\(version.seq)", resource: ProvenanceResource.make(version).serialized(),
                extra: [("search", .object([("mode", .string("match"))]))])
        }
        if access.consentUnavailable { bundle.warning(ReadAccess.consentUnavailableWarning) }
        return FHIRHTTP.jsonResponse(bundle.finish())
    }

    /// `target` (`Type/id` for all its versions or `Type/id/_history/n` for one), `patient`,
    /// `_count` and `_cursor`; `_format` is the content negotiation's. Anything else is a 400:
    /// silently ignoring a filter would return far more than was asked.
    static func parse(_ fields: [(name: String, value: String)], base: String) throws(Problem) -> (ProvenanceStore.Filter, Int, [(name: String, value: String)]) {
        var filter = ProvenanceStore.Filter()
        var count = 20
        var applied: [(name: String, value: String)] = []
        for (name, value) in fields {
            switch name {
            case "target":
                var text = Substring(value)
                if text.hasPrefix(base + "/") { text = text.dropFirst(base.count + 1) }
                let parts = text.split(separator: "/", omittingEmptySubsequences: false)
                guard parts.count == 2 || (parts.count == 4 && parts[2] == "_history"), let type = ResourceType(path: parts[0]),
                    FHIRReference.isValidID(parts[1])
                else { throw Problem.badRequest("target must be Type/id or Type/id/_history/n of a Patient, Practitioner, DiagnosticReport or Binary") }
                filter.type = type
                filter.id = String(parts[1])
                if parts.count == 4 {
                    guard let version = Int(parts[3]), version > 0 else { throw Problem.badRequest("target's version must be a whole number ≥ 1") }
                    filter.version = version
                }
            case "patient":
                let id = value.hasPrefix("Patient/") ? String(value.dropFirst(8)) : value
                guard FHIRReference.isValidID(id) else { throw Problem.badRequest("patient must be Patient/id or an id") }
                filter.patient = id
            case "_count":
                guard let n = Int(value), n >= 0 else { throw Problem.badRequest("_count must be a whole number ≥ 0") }
                count = min(n, 1000)
            case "_cursor":
                guard let seq = Int64(value), seq > 0 else { throw Problem.badRequest("_cursor is not one this server issued") }
                filter.beforeSeq = seq
                continue
            case "_format":
                continue
            default:
                throw Problem.badRequest("Provenance supports the search parameters target, patient, _count and _cursor, not \(name)")
            }
            applied.append((name, value))
        }
        return (filter, count, applied)
    }
}
