/// A complete, aligned subtree: level ℓ, index i covers leaves [i·2^ℓ, (i+1)·2^ℓ). Every hash in
/// an RFC 6962 proof is one of these or a right-fold of a few of them along the right edge.
struct NodeID: Hashable, Sendable {
    var level: Int
    var index: Int64

    /// The tile holding the hashes this node is computed from, and their range in that tile.
    var tileLocation: (tile: TileKey, range: Range<Int>) {
        let tileLevel = level / 8
        let withinTile = level % 8
        let first = index << withinTile
        let offset = Int(first & 0xFF)
        return (TileKey(level: tileLevel, index: first >> 8), offset..<offset + (1 << withinTile))
    }
}

struct TileKey: Hashable, Sendable {
    var level: Int
    var index: Int64
}
