import Hummingbird
import MedLedgerCore

/// `POST /events`: MedLedger's services deliver their audit outboxes here (role `service`,
/// scope `medledger/audit.write`). Retries with the same idempotency keys store nothing twice.
struct EventsController {
    let writer: ChainWriter
    let config: AuditConfig
    let verifier: TokenVerifier

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.add(middleware: BearerAuthMiddleware(verifier: verifier, anyScope: [Scope.auditWrite], anyRole: [Role.service.rawValue]))
        routes.post("events") { request, _ in try await ingest(request) }
        return routes
    }

    func ingest(_ request: Request) async throws -> Response {
        let body = try await request.jsonBody(limit: config.common.maxBodyBytes)
        let batch = try EventBatch(body, maxEvents: config.batchLimit, maxEventBytes: AuditConfig.eventMaxBytes)
        let receipts = try await writer.submit(batch.events)
        return Self.response(keys: batch.events.map(\.idempotencyKey), receipts: receipts)
    }

    /// `{"events": [{"idempotencyKey", "id"[, "duplicate": true]}]}` in request order; `id` is
    /// the stored AuditEvent's id (its place in the chain).
    static func response(keys: [String], receipts: [ChainReceipt]) -> Response {
        let events: [JSONValue] = zip(keys, receipts).map { key, receipt in
            var members: [(key: String, value: JSONValue)] = [("idempotencyKey", .string(key)), ("id", .string(String(receipt.seq)))]
            if receipt.duplicate { members.append(("duplicate", .bool(true))) }
            return .object(members)
        }
        return Response.json(JSONValue.object([("events", .array(events))]).serialized())
    }
}
