import Hummingbird
import MedLedgerCore

/// `POST /entries`: append (service token with `medledger/ledger.append`).
struct EntriesController {
    let sequencer: Sequencer
    let publisher: CheckpointPublisher
    let tiles: TileStore
    let config: LedgerConfig
    let verifier: TokenVerifier

    struct AppendedEntry: Encodable {
        var idempotencyKey: String
        var index: Int64
        var inclusionProof: [String]?
    }

    struct AppendResponse: ResponseEncodable {
        var entries: [AppendedEntry]
        var checkpoint: String?
    }

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.add(middleware: BearerAuthMiddleware(verifier: verifier, anyScope: ["medledger/ledger.append"]))
        routes.post("/entries") { request, context in try await append(request, context: context) }
        return routes
    }

    func append(_ request: Request, context: ServiceRequestContext) async throws -> AppendResponse {
        let wait = request.queryText("wait")
        guard wait == nil || wait == "checkpoint" else { throw Problem.badRequest("wait must be \"checkpoint\" when given") }
        let body = try await request.jsonBody(limit: config.common.maxBodyBytes)
        let batch = try EntryBatch(body, maxEntries: config.maxEntriesPerRequest, maxEntryBytes: config.maxEntryBytes)
        let indices = try await sequencer.submit(batch.entries)
        let keys = batch.entries.map(\.idempotencyKey)
        guard wait != nil else {
            return AppendResponse(entries: zip(keys, indices).map { AppendedEntry(idempotencyKey: $0, index: $1) })
        }
        guard let checkpoint = await publisher.waitForCheckpoint(covering: indices.max()! + 1, timeout: config.checkpointWait) else {
            throw Problem(.serviceUnavailable, "the entries are sequenced but no checkpoint covers them yet; retry with the same idempotency keys")
        }
        let proofs = try await tiles.evaluate(indices.map { ProofPlan.inclusion(index: $0, size: checkpoint.size) }, logger: context.logger)
        return AppendResponse(
            entries: zip(zip(keys, indices), proofs).map { pair, proof in
                AppendedEntry(idempotencyKey: pair.0, index: pair.1, inclusionProof: proof.map(\.base64String))
            },
            checkpoint: checkpoint.note
        )
    }
}
