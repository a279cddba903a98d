import MedLedgerCore

/// The right edge of the tree, as the sequencer keeps it in memory: at each tile level, the
/// hashes of the rightmost, incomplete tile. Appending a leaf touches only these; a tile that
/// fills up contributes its root one tile level higher. Everything else is immutable and lives
/// in the database, so restarting reads at most one partial tile per level.
struct TreeFrontier: Sendable {
    private(set) var size: Int64 = 0
    /// partial[t]: hashes at tree level 8t in tile number (size >> 8t) >> 8; fewer than 256.
    private(set) var partial: [[[UInt8]]] = []

    struct TileWrite: Sendable {
        var key: TileKey
        var hashes: [[UInt8]]
    }

    init() {}

    /// Rebuilds the frontier for `size` from stored tiles (`tile` returns a stored tile's hashes).
    init(size: Int64, tile: (TileKey) async throws -> [[UInt8]]) async throws {
        self.size = size
        var level = 0
        while size >> (8 * level) > 0 {
            let count = size >> (8 * level)
            let width = Int(count & 0xFF)
            if width > 0 {
                let hashes = try await tile(TileKey(level: level, index: count >> 8))
                guard hashes.count >= width else { throw FrontierError.missingTile(level: level, index: count >> 8) }
                partial.append(Array(hashes.prefix(width)))
            } else {
                partial.append([])
            }
            level += 1
        }
    }

    enum FrontierError: Error, CustomStringConvertible {
        case missingTile(level: Int, index: Int64)
        var description: String {
            switch self {
            case .missingTile(let level, let index): "stored tile \(level)/\(index) is shorter than the tree size requires"
            }
        }
    }

    /// Appends leaf hashes; returns the final contents of every tile that changed.
    mutating func append(_ leafHashes: [[UInt8]]) -> [TileWrite] {
        var completed: [TileWrite] = []
        var touchedLevels = 0
        for leafHash in leafHashes {
            var hash = leafHash
            var level = 0
            while true {
                if partial.count == level { partial.append([]) }
                touchedLevels = max(touchedLevels, level + 1)
                partial[level].append(hash)
                guard partial[level].count == TilePath.width else { break }
                // The tile is full: store it, and its root becomes a hash one tile level up.
                let tileIndex = (((size + 1) >> (8 * level)) >> 8) - 1
                completed.append(TileWrite(key: TileKey(level: level, index: tileIndex), hashes: partial[level]))
                hash = MerkleTree.root(of: partial[level][...])
                partial[level] = []
                level += 1
            }
            size += 1
        }
        var writes = completed
        for level in 0..<touchedLevels where !partial[level].isEmpty {
            writes.append(TileWrite(key: TileKey(level: level, index: (size >> (8 * level)) >> 8), hashes: partial[level]))
        }
        return writes
    }

    /// The RFC 6962 root of the current tree.
    var root: [UInt8] {
        var subtrees: [[UInt8]] = []
        for hashes in partial.reversed() {
            var start = 0
            for bit in stride(from: 7, through: 0, by: -1) where hashes.count & (1 << bit) != 0 {
                subtrees.append(MerkleTree.root(of: hashes[start..<start + (1 << bit)]))
                start += 1 << bit
            }
        }
        return ProofPlan.fold(subtrees)
    }
}
