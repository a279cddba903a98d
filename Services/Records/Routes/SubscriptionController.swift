import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// FHIR R4 `Subscription`: create, read, update, delete, search and `$status`, each only ever
/// about the caller's own subscriptions (anyone else's is "not known").
struct SubscriptionController {
    let deps: RecordsDependencies
    let subscriptions: SubscriptionStore

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.post("Subscription") { request, context in try await create(request, context: context) }
        routes.get("Subscription") { request, context in try await search(request, context: context) }
        routes.get("Subscription/{id}") { request, context in try await read(request, context: context) }
        routes.put("Subscription/{id}") { request, context in try await update(request, context: context) }
        routes.delete("Subscription/{id}") { request, context in try await delete(request, context: context) }
        routes.get("Subscription/{id}/$status") { request, context in try await status(request, context: context) }
        // Reached only when the websocket upgrade did not happen (see `buildApplication`).
        routes.get("websocket") { _, context -> Response in
            _ = try Self.subscriber(context)
            throw Problem(
                .init(code: 426, reasonPhrase: "Upgrade Required"), "connect with a websocket upgrade (Connection: Upgrade, Upgrade: websocket)",
                headers: [.upgrade: "websocket"])
        }
        return routes
    }

    /// Who may subscribe: those who read reports for patients (doctors, patients, EHR systems).
    static func subscriber(_ context: ServiceRequestContext) throws(Problem) -> Caller {
        let caller = try Caller(context: context)
        guard [.doctor, .patient, .system].contains(caller.role) else {
            throw Problem.forbidden("subscriptions are for doctors, patients and EHR systems (role \(caller.role.rawValue) reads no reports)")
        }
        try caller.require(.read, on: .diagnosticReport)
        return caller
    }

    private func event(_ kind: RecordsAuditEvent.Kind, _ caller: Caller, entity: String? = nil) -> RecordsAuditEvent {
        RecordsAuditEvent(kind: kind, caller: caller, type: "Subscription", entity: entity)
    }

    private var development: Bool { deps.config.common.mode == .development }

    func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        try FHIRHTTP.requireJSON(request)
        let caller = try Self.subscriber(context)
        try FHIRHTTP.requireJSONBody(request)
        let resource = try await FHIRHTTP.resourceBody(request, type: "Subscription", limit: deps.config.resourceMaxBytes)
        let spec = try SubscriptionSpec(resource, development: development)
        try await requireReadable(spec, caller: caller, logger: context.logger)
        let id = UUID().uuidString.lowercased()
        let stored = try await deps.writeTransaction(logger: context.logger) { connection in
            let stored = try await subscriptions.write(spec, id: id, version: 1, owner: caller, now: ResourceStamp.now(), on: connection, logger: context.logger)
            try await AuditLog.record(event(.create, caller, entity: "\(stored.reference)/_history/1"), on: connection, logger: context.logger)
            return stored
        }
        return try await written(stored, status: .created, request: request, logger: context.logger)
    }

    func read(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        try FHIRHTTP.requireJSON(request)
        let caller = try Self.subscriber(context)
        let stored = try await live(try context.parameters.require("id"), caller: caller, logger: context.logger)
        try await deps.audit.record(event(.read, caller, entity: "\(stored.reference)/_history/\(stored.version)"))
        let body = try await subscriptions.resource(stored, logger: context.logger).serialized()
        return Response(
            status: .ok, headers: FHIRHTTP.versionHeaders(version: stored.version, lastUpdated: Micros.date(stored.lastUpdated), location: nil),
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    func update(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        try FHIRHTTP.requireJSON(request)
        let caller = try Self.subscriber(context)
        let id = try context.parameters.require("id")
        try FHIRHTTP.requireJSONBody(request)
        let resource = try await FHIRHTTP.resourceBody(request, type: "Subscription", limit: deps.config.resourceMaxBytes)
        guard resource["id"]?.stringValue == id else { throw Problem.badRequest("the resource's id must be present and equal to the id in the URL (\(id))") }
        let expected = try FHIRHTTP.ifMatch(request)
        let stored = try await deps.writeTransaction(logger: context.logger) { connection in
            let current = try await locked(id, caller: caller, expected: expected, on: connection, logger: context.logger)
            let spec = try SubscriptionSpec(resource, development: development, current: current.status)
            try await requireReadable(spec, caller: caller, logger: context.logger)
            let stored = try await subscriptions.write(
                spec, id: id, version: current.version + 1, owner: caller, now: ResourceStamp.now(), on: connection, logger: context.logger)
            try await AuditLog.record(event(.update, caller, entity: "\(stored.reference)/_history/\(stored.version)"), on: connection, logger: context.logger)
            return stored
        }
        return try await written(stored, status: .ok, request: request, logger: context.logger)
    }

    func delete(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        try FHIRHTTP.requireJSON(request)
        let caller = try Self.subscriber(context)
        let id = try context.parameters.require("id")
        let expected = try FHIRHTTP.ifMatch(request)
        try await deps.writeTransaction(logger: context.logger) { connection in
            guard let current = try await subscriptions.owned(id, by: caller, lock: true, on: connection, logger: context.logger) else {
                throw Problem.notFound("Subscription/\(id) is not known")
            }
            // Deleting what is already deleted changes nothing (FHIR: delete is idempotent).
            if current.deleted { return }
            if let expected, expected != current.version {
                throw Problem(.preconditionFailed, "If-Match names version \(expected) but the current version is \(current.version)")
            }
            try await subscriptions.delete(current, now: ResourceStamp.now(), on: connection, logger: context.logger)
            try await AuditLog.record(event(.delete, caller, entity: current.reference), on: connection, logger: context.logger)
        }
        return Response(status: .noContent)
    }

    func search(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        try FHIRHTTP.requireJSON(request)
        let caller = try Self.subscriber(context)
        let count = Int(try request.queryInteger("_count", in: 0...1000) ?? 50)
        let status = request.queryText("status")
        let channel = request.queryText("type")
        let found = try await subscriptions.search(owner: caller, status: status, channel: channel, limit: count, logger: context.logger)
        let query = [("status", status), ("type", channel)].compactMap { name, value in value.map { "\(name)=\(SearchLinks.encode($0))" } }
        try await deps.audit.record(event(.searchType, caller).withQuery(query.joined(separator: "&")))
        let selfLink = "\(deps.base)/Subscription" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        var bundle = BundleWriter(type: "searchset", total: found.count < count ? found.count : nil, links: [("self", selfLink)])
        for stored in found {
            bundle.entry(
                fullUrl: "\(deps.base)/\(stored.reference)", resource: try await subscriptions.resource(stored, logger: context.logger).serialized(),
                extra: [("search", .object([("mode", .string("match"))]))])
        }
        return FHIRHTTP.jsonResponse(bundle.finish())
    }

    /// `$status`: the subscription's state and its newest events (delivered, pending, skipped).
    func status(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        try FHIRHTTP.requireJSON(request)
        let caller = try Self.subscriber(context)
        let stored = try await live(try context.parameters.require("id"), caller: caller, logger: context.logger)
        let events = try await SubscriptionStatusReport.recentEvents(stored.id, base: deps.base, postgres: deps.postgres, logger: context.logger)
        try await deps.audit.record(event(.operation, caller, entity: stored.reference).withOperation("status"))
        let parameters = NotificationBundle.statusParameters(subscription: stored, base: deps.base, type: "query-status", extra: events)
        return FHIRHTTP.jsonResponse(parameters.serialized())
    }

    private func live(_ id: String, caller: Caller, logger: Logger) async throws -> StoredSubscription {
        let stored = try await deps.postgres.withConnection { connection in
            try await subscriptions.owned(id, by: caller, on: connection, logger: logger)
        }
        guard let stored else { throw Problem.notFound("Subscription/\(id) is not known") }
        if stored.deleted { throw Problem(.gone, "Subscription/\(id) was deleted") }
        return stored
    }

    private func locked(_ id: String, caller: Caller, expected: Int?, on connection: PostgresConnection, logger: Logger) async throws
        -> StoredSubscription
    {
        guard let current = try await subscriptions.owned(id, by: caller, lock: true, on: connection, logger: logger) else {
            throw Problem.notFound("Subscription/\(id) is not known (update cannot create subscriptions here)")
        }
        if current.deleted { throw Problem(.gone, "Subscription/\(id) was deleted") }
        if let expected, expected != current.version {
            throw Problem(.preconditionFailed, "If-Match names version \(expected) but the current version is \(current.version)")
        }
        return current
    }

    /// Criteria pinned to patients must name patients the caller may read now; unpinned
    /// criteria are narrowed to what the caller may read at each delivery.
    private func requireReadable(_ spec: SubscriptionSpec, caller: Caller, logger: Logger) async throws {
        guard let patients = spec.criteria.pinnedPatients(base: deps.base), !patients.isEmpty else { return }
        let access = await ReadAccess.resolve(for: caller, grants: deps.consent)
        let hidden = try await deps.postgres.withConnection { connection in
            var hidden: [String] = []
            for patient in patients.sorted() {
                let rule = access.rule(on: .patient, patients: [patient])
                if try await !ResourceReads.visible(.patient, id: patient, rule: rule, on: connection, logger: logger) { hidden.append(patient) }
            }
            return hidden
        }
        guard hidden.isEmpty else {
            if access.consentUnavailable { throw ReadAccess.consentUnavailableProblem }
            throw Problem.forbidden("you may not read the reports of Patient/\(hidden[0]), so you cannot subscribe to them")
        }
    }

    private func written(_ stored: StoredSubscription, status: HTTPResponse.Status, request: Request, logger: Logger) async throws -> Response {
        let body = try await subscriptions.resource(stored, logger: logger).serialized()
        let reference = "\(stored.reference)/_history/\(stored.version)"
        let headers = FHIRHTTP.versionHeaders(version: stored.version, lastUpdated: Micros.date(stored.lastUpdated), location: "\(deps.base)/\(reference)")
        return FHIRHTTP.writeResponse(body: body, reference: reference, headers: headers, status: status, request: request)
    }
}

extension RecordsAuditEvent {
    fileprivate func withQuery(_ query: String) -> RecordsAuditEvent {
        var event = self
        event.query = query
        return event
    }

    fileprivate func withOperation(_ name: String) -> RecordsAuditEvent {
        var event = self
        event.operation = name
        return event
    }
}
