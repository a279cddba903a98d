import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO
import Synchronization

/// Reads tiles (each row: up to 256 concatenated 32-byte hashes) and computes subtree hashes
/// from them. A stored hash never changes, and a partial tile only ever grows, so every tile is
/// cached (the longest version seen) and read again only when a request needs more of it.
final class TileStore: Sendable {
    let postgres: PostgresClient
    private let cache = Mutex<[TileKey: [UInt8]]>([:])
    /// 8192 tiles ≤ 64 MiB: all level-0 tiles of a 2M-entry log.
    let cacheLimit: Int

    init(postgres: PostgresClient, cacheLimit: Int = 8192) {
        self.postgres = postgres
        self.cacheLimit = cacheLimit
    }

    /// Stored bytes of tiles, each at least as long as asked for when the database has that much.
    func tiles(_ needed: [TileKey: Int], logger: Logger) async throws -> [TileKey: [UInt8]] {
        var found = cache.withLock { cache in
            needed.reduce(into: [TileKey: [UInt8]]()) { found, need in
                if let bytes = cache[need.key], bytes.count >= need.value { found[need.key] = bytes }
            }
        }
        let missing = needed.keys.filter { found[$0] == nil }
        guard !missing.isEmpty else { return found }
        let rows = try await postgres.query(
            """
            SELECT t.level, t.idx, t.hashes FROM tiles t
            JOIN unnest(\(missing.map { Int32($0.level) })::integer[], \(missing.map(\.index))::bigint[]) AS k(level, idx)
            ON t.level = k.level AND t.idx = k.idx
            """,
            logger: logger
        )
        var fetched: [(TileKey, [UInt8])] = []
        for try await (level, index, hashes) in rows.decode((Int32, Int64, ByteBuffer).self) {
            let key = TileKey(level: Int(level), index: index)
            let bytes = Array(hashes.readableBytesView)
            found[key] = bytes
            fetched.append((key, bytes))
        }
        cache.withLock { cache in
            if cache.count + fetched.count > cacheLimit { cache.removeAll(keepingCapacity: true) }
            for (key, bytes) in fetched where (cache[key]?.count ?? 0) < bytes.count { cache[key] = bytes }
        }
        return found
    }

    /// Hashes of the given complete subtrees.
    func hashes(of nodes: Set<NodeID>, logger: Logger) async throws -> [NodeID: [UInt8]] {
        let locations = Dictionary(uniqueKeysWithValues: nodes.map { ($0, $0.tileLocation) })
        var needed: [TileKey: Int] = [:]
        for location in locations.values {
            needed[location.tile] = max(needed[location.tile] ?? 0, location.range.upperBound * MerkleTree.hashSize)
        }
        let tiles = try await tiles(needed, logger: logger)
        var result: [NodeID: [UInt8]] = [:]
        for (node, location) in locations {
            let range = location.range.lowerBound * MerkleTree.hashSize..<location.range.upperBound * MerkleTree.hashSize
            guard let bytes = tiles[location.tile], bytes.count >= range.upperBound else {
                throw LedgerError.treeDataMissing("tile \(location.tile.level)/\(location.tile.index) lacks hashes for node \(node.level)/\(node.index)")
            }
            result[node] = MerkleTree.completeRoot(ofConcatenated: bytes[range])
        }
        return result
    }

    /// Evaluates proof plans (see `ProofPlan`) with at most one round of tile reads.
    func evaluate(_ plans: [[[NodeID]]], logger: Logger) async throws -> [[[UInt8]]] {
        let nodes = Set(plans.flatMap { $0.flatMap { $0 } })
        let hashes = try await hashes(of: nodes, logger: logger)
        return plans.map { plan in plan.map { element in ProofPlan.fold(element.map { hashes[$0]! }) } }
    }

    /// One tile's hashes as a list (used to rebuild the frontier, inside the writer's transaction).
    func tileHashes(_ key: TileKey, on connection: PostgresConnection, logger: Logger) async throws -> [[UInt8]] {
        let rows = try await connection.query("SELECT hashes FROM tiles WHERE level = \(Int32(key.level)) AND idx = \(key.index)", logger: logger)
        for try await hashes in rows.decode(ByteBuffer.self) {
            let bytes = Array(hashes.readableBytesView)
            return stride(from: 0, to: bytes.count, by: MerkleTree.hashSize).map { Array(bytes[$0..<$0 + MerkleTree.hashSize]) }
        }
        return []
    }
}

enum LedgerError: Error, CustomStringConvertible {
    case treeDataMissing(String)
    case treeCorrupt(String)

    var description: String {
        switch self {
        case .treeDataMissing(let message): "tree data missing: \(message)"
        case .treeCorrupt(let message): "tree corrupt: \(message)"
        }
    }
}
