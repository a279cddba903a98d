import Hummingbird
import MedLedgerCore

/// `POST /entries`: append (service token with `medledger/ledger.append`).
struct EntriesController {
    let sequencer: Sequencer
    let publisher: CheckpointPublisher
    let tiles: TileStore
    let config: LedgerConfig
    let verifier: TokenVerifier

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.add(middleware: BearerAuthMiddleware(verifier: verifier, anyScope: ["medledger/ledger.append"]))
        routes.post("/entries") { request, context in try await append(request, context: context) }
        return routes
    }

    func append(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let wait = request.queryText("wait")
        guard wait == nil || wait == "checkpoint" else { throw Problem.badRequest("wait must be \"checkpoint\" when given") }
        let body = try await request.jsonBody(limit: config.common.maxBodyBytes)
        let batch = try EntryBatch(body, maxEntries: config.maxEntriesPerRequest, maxEntryBytes: config.maxEntryBytes)
        let indices = try await sequencer.submit(batch.entries)
        let keys = batch.entries.map(\.idempotencyKey)
        guard wait != nil else { return Self.response(keys: keys, indices: indices) }
        guard let checkpoint = await publisher.waitForCheckpoint(covering: indices.max()! + 1, timeout: config.checkpointWait) else {
            throw Problem(.serviceUnavailable, "the entries are sequenced but no checkpoint covers them yet; retry with the same idempotency keys")
        }
        let proofs = try await tiles.evaluate(indices.map { ProofPlan.inclusion(index: $0, size: checkpoint.size) }, logger: context.logger)
        return Self.response(keys: keys, indices: indices, proofs: proofs, checkpoint: checkpoint.note)
    }

    /// `{"entries": [{"idempotencyKey", "index"[, "inclusionProof"]}][, "checkpoint"]}`, serialised
    /// directly: this is the write hot path.
    static func response(keys: [String], indices: [Int64], proofs: [[[UInt8]]]? = nil, checkpoint: String? = nil) -> Response {
        let entries: [JSONValue] = keys.indices.map { i in
            var members: [(key: String, value: JSONValue)] = [("idempotencyKey", .string(keys[i])), ("index", .number(String(indices[i])))]
            if let proofs { members.append(("inclusionProof", .array(proofs[i].map { .string($0.base64String) }))) }
            return .object(members)
        }
        var body: [(key: String, value: JSONValue)] = [("entries", .array(entries))]
        if let checkpoint { body.append(("checkpoint", .string(checkpoint))) }
        return Response.json(JSONValue.object(body).serialized())
    }
}
