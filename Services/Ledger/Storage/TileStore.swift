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
    /// Hashes of subtrees inside full tiles (immutable), so proofs do not rehash them each time.
    private let nodes = Mutex<[NodeID: [UInt8]]>([:])
    /// 8192 tiles ≤ 64 MiB: all level-0 tiles of a 2M-entry log.
    let cacheLimit: Int
    let nodeCacheLimit: Int

    init(postgres: PostgresClient, cacheLimit: Int = 8192, nodeCacheLimit: Int = 500_000) {
        self.postgres = postgres
        self.cacheLimit = cacheLimit
        self.nodeCacheLimit = nodeCacheLimit
    }

    /// Bounded caches drop a quarter of their entries (arbitrary ones) when full, not everything.
    static func makeRoom<Key, Value>(in cache: inout [Key: Value], for count: Int, limit: Int) {
        guard cache.count + count > limit else { return }
        for key in Array(cache.keys.prefix(max(limit / 4, count))) { cache[key] = nil }
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
            Self.makeRoom(in: &cache, for: fetched.count, limit: cacheLimit)
            for (key, bytes) in fetched where (cache[key]?.count ?? 0) < bytes.count { cache[key] = bytes }
        }
        return found
    }

    /// Hashes of the given complete subtrees.
    func hashes(of nodes: Set<NodeID>, logger: Logger) async throws -> [NodeID: [UInt8]] {
        var result = self.nodes.withLock { cache in
            nodes.reduce(into: [NodeID: [UInt8]]()) { found, node in found[node] = cache[node] }
        }
        let locations = Dictionary(uniqueKeysWithValues: nodes.filter { result[$0] == nil }.map { ($0, $0.tileLocation) })
        guard !locations.isEmpty else { return result }
        var needed: [TileKey: Int] = [:]
        for location in locations.values {
            needed[location.tile] = max(needed[location.tile] ?? 0, location.range.upperBound * MerkleTree.hashSize)
        }
        let tiles = try await tiles(needed, logger: logger)
        var immutable: [(NodeID, [UInt8])] = []
        for (node, location) in locations {
            let range = location.range.lowerBound * MerkleTree.hashSize..<location.range.upperBound * MerkleTree.hashSize
            guard let bytes = tiles[location.tile], bytes.count >= range.upperBound else {
                throw LedgerError.treeDataMissing("tile \(location.tile.level)/\(location.tile.index) lacks hashes for node \(node.level)/\(node.index)")
            }
            let hash = MerkleTree.completeRoot(ofConcatenated: bytes[range])
            result[node] = hash
            if bytes.count == TilePath.width * MerkleTree.hashSize, location.range.count > 1 { immutable.append((node, hash)) }
        }
        if !immutable.isEmpty {
            self.nodes.withLock { cache in
                Self.makeRoom(in: &cache, for: immutable.count, limit: nodeCacheLimit)
                for (node, hash) in immutable { cache[node] = hash }
            }
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
