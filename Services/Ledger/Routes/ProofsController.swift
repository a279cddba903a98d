import Hummingbird
import MedLedgerCore

/// The public reads of the log: checkpoint, entries, inclusion and consistency proofs.
struct ProofsController {
    let publisher: CheckpointPublisher
    let tiles: TileStore
    let queries: LedgerQueries

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.get("/checkpoint") { _, _ in
            guard let checkpoint = try await publisher.current() else { throw Problem.notFound("no checkpoint has been signed yet") }
            return Response.text(checkpoint.note, headers: [.cacheControl: "no-cache"])
        }
        routes.get("/proofs/inclusion") { request, context in try await inclusion(request, context: context) }
        routes.get("/proofs/consistency") { request, context in try await consistency(request, context: context) }
        routes.get("/entries/{index}") { _, context in
            let index = try Self.pathIndex(context)
            guard let data = try await queries.entry(index, logger: context.logger) else { throw Problem.notFound("no entry \(index)") }
            var response = Response.json(data)
            response.headers[.cacheControl] = "public, max-age=31536000, immutable"
            return response
        }
        routes.get("/entries/{index}/tlog-proof") { _, context in try await tlogProof(context: context) }
        return routes
    }

    static func pathIndex(_ context: ServiceRequestContext) throws(Problem) -> Int64 {
        let raw = context.parameters.get("index") ?? ""
        guard !raw.isEmpty, raw.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let index = Int64(raw) else {
            throw Problem.badRequest("the entry index must be a whole number ≥ 0, got \"\(raw)\"")
        }
        return index
    }

    /// Proofs may be asked for any size up to what has been sequenced. Sizes up to the latest
    /// checkpoint need no database round trip; only larger ones are checked against the tree state.
    func checkSize(_ size: Int64, name: String, context: ServiceRequestContext) async throws {
        if let latest = try await publisher.current(), size <= latest.size { return }
        let treeSize = try await queries.treeSize(logger: context.logger)
        guard size <= treeSize else { throw Problem.badRequest("\(name) (\(size)) is beyond the tree size \(treeSize)") }
    }

    func inclusion(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let size = try request.queryInteger("size", in: 1...Int64.max) else { throw Problem.badRequest("size is required") }
        try await checkSize(size, name: "size", context: context)
        let index: Int64
        if let leafHashText = request.queryText("leafHash") {
            guard request.queryText("index") == nil else { throw Problem.badRequest("give index or leafHash, not both") }
            guard let leafHash = Base64.decodeLenient(leafHashText), leafHash.count == MerkleTree.hashSize else {
                throw Problem.badRequest("leafHash must be a base64 SHA-256 hash")
            }
            guard let found = try await queries.index(ofLeafHash: leafHash, logger: context.logger), found < size else {
                throw Problem.notFound("no leaf with that hash in the tree of size \(size)")
            }
            index = found
        } else {
            guard let given = try request.queryInteger("index") else { throw Problem.badRequest("index or leafHash is required") }
            guard given < size else { throw Problem.badRequest("index \(given) is not inside a tree of size \(size)") }
            index = given
        }
        let hashes = try await tiles.evaluate([ProofPlan.inclusion(index: index, size: size)], logger: context.logger)[0]
        return Self.proofResponse([("index", index), ("size", size)], hashes)
    }

    func consistency(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let from = try request.queryInteger("from"), let to = try request.queryInteger("to") else {
            throw Problem.badRequest("from and to are required")
        }
        guard from >= 1 else { throw Problem.badRequest("from must be at least 1") }
        guard from <= to else { throw Problem.badRequest("from (\(from)) must not be greater than to (\(to))") }
        try await checkSize(to, name: "to", context: context)
        let hashes = from == to ? [] : try await tiles.evaluate([ProofPlan.consistency(from: from, to: to)], logger: context.logger)[0]
        return Self.proofResponse([("from", from), ("to", to)], hashes)
    }

    /// `{"<name>": n, …, "hashes": ["base64", …]}`, serialised directly (proofs are the hot read path).
    static func proofResponse(_ numbers: [(String, Int64)], _ hashes: [[UInt8]]) -> Response {
        let members = numbers.map { (key: $0.0, value: JSONValue.number(String($0.1))) }
        return Response.json(JSONValue.object(members + [("hashes", .array(hashes.map { .string($0.base64String) }))]).serialized())
    }

    func tlogProof(context: ServiceRequestContext) async throws -> Response {
        let index = try Self.pathIndex(context)
        guard let checkpoint = try await publisher.current() else { throw Problem.notFound("no checkpoint has been signed yet") }
        guard index < checkpoint.size else {
            throw Problem.notFound("entry \(index) is not covered by the latest checkpoint (size \(checkpoint.size)) yet")
        }
        let hashes = try await tiles.evaluate([ProofPlan.inclusion(index: index, size: checkpoint.size)], logger: context.logger)[0]
        return Response.text(TlogProof(index: index, hashes: hashes, checkpoint: checkpoint.note).formatted)
    }
}
