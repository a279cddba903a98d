import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO
import Synchronization

/// Reads tiles (each row: up to 256 concatenated 32-byte hashes) and computes subtree hashes
/// from them. Full tiles never change, so they are cached in memory (bounded); partial ones are
/// read fresh each time.
final class TileStore: Sendable {
    let postgres: PostgresClient
    private let cache = Mutex<[TileKey: [UInt8]]>([:])
    /// 8192 full tiles = 64 MiB: all level-0 tiles of a 2M-entry log.
    let cacheLimit: Int

    init(postgres: PostgresClient, cacheLimit: Int = 8192) {
        self.postgres = postgres
        self.cacheLimit = cacheLimit
    }

    /// Stored bytes of the given tiles (absent ones are missing from the result).
    func tiles(_ keys: Set<TileKey>, logger: Logger) async throws -> [TileKey: [UInt8]] {
        var found: [TileKey: [UInt8]] = [:]
        let cached = cache.withLock { cache in keys.compactMap { key in cache[key].map { (key, $0) } } }
        for (key, bytes) in cached { found[key] = bytes }
        let missing = keys.filter { found[$0] == nil }
        guard !missing.isEmpty else { return found }
        let levels = missing.map { Int32($0.level) }
        let indexes = missing.map(\.index)
        let rows = try await postgres.query(
            """
            SELECT t.level, t.idx, t.hashes FROM tiles t
            JOIN unnest(\(levels)::integer[], \(indexes)::bigint[]) AS k(level, idx) ON t.level = k.level AND t.idx = k.idx
            """,
            logger: logger
        )
        var full: [(TileKey, [UInt8])] = []
        for try await (level, index, hashes) in rows.decode((Int32, Int64, ByteBuffer).self) {
            let key = TileKey(level: Int(level), index: index)
            let bytes = Array(hashes.readableBytesView)
            found[key] = bytes
            if bytes.count == TilePath.width * MerkleTree.hashSize { full.append((key, bytes)) }
        }
        if !full.isEmpty {
            cache.withLock { cache in
                if cache.count + full.count > cacheLimit { cache.removeAll(keepingCapacity: true) }
                for (key, bytes) in full { cache[key] = bytes }
            }
        }
        return found
    }

    /// Hashes of the given complete subtrees.
    func hashes(of nodes: Set<NodeID>, logger: Logger) async throws -> [NodeID: [UInt8]] {
        let locations = Dictionary(uniqueKeysWithValues: nodes.map { ($0, $0.tileLocation) })
        let tiles = try await tiles(Set(locations.values.map(\.tile)), logger: logger)
        var result: [NodeID: [UInt8]] = [:]
        for (node, location) in locations {
            guard let bytes = tiles[location.tile], bytes.count >= location.range.upperBound * MerkleTree.hashSize else {
                throw LedgerError.treeDataMissing("tile \(location.tile.level)/\(location.tile.index) lacks hashes for node \(node.level)/\(node.index)")
            }
            let leaves = location.range.map { i in Array(bytes[i * MerkleTree.hashSize..<(i + 1) * MerkleTree.hashSize]) }
            result[node] = MerkleTree.root(of: leaves[...])
        }
        return result
    }

    /// Evaluates proof plans (see `ProofPlan`) with one round of tile reads.
    func evaluate(_ plans: [[[NodeID]]], logger: Logger) async throws -> [[[UInt8]]] {
        let nodes = Set(plans.flatMap { $0.flatMap { $0 } })
        let hashes = try await hashes(of: nodes, logger: logger)
        return plans.map { plan in plan.map { element in ProofPlan.fold(element.map { hashes[$0]! }) } }
    }

    func root(size: Int64, logger: Logger) async throws -> [UInt8] {
        try await evaluate([[ProofPlan.decompose(0, size)]], logger: logger)[0][0]
    }

    /// One tile's hashes as a list (used to rebuild the frontier).
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
