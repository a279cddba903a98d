import MedLedgerCore

/// RFC 6962 PATH and SUBPROOF expressed as the complete subtrees each proof hash is made of, so
/// that all needed tiles can be fetched in one query before any hashing.
/// Each proof element is a list of nodes whose hashes are right-folded (one node when complete).
enum ProofPlan {
    /// Splits [lo, hi) into complete aligned subtrees, largest (leftmost) first.
    static func decompose(_ lo: Int64, _ hi: Int64) -> [NodeID] {
        var nodes: [NodeID] = []
        var start = lo
        var remaining = hi - lo
        while remaining > 0 {
            let level = Int64.bitWidth - 1 - remaining.leadingZeroBitCount
            nodes.append(NodeID(level: level, index: start >> level))
            start += 1 << level
            remaining -= 1 << level
        }
        return nodes
    }

    static func inclusion(index: Int64, size: Int64) -> [[NodeID]] {
        path(index, 0, size)
    }

    private static func path(_ m: Int64, _ lo: Int64, _ hi: Int64) -> [[NodeID]] {
        guard hi - lo > 1 else { return [] }
        let k = Int64(MerkleTree.largestPowerOfTwo(below: Int(hi - lo)))
        if m - lo < k {
            return path(m, lo, lo + k) + [decompose(lo + k, hi)]
        }
        return path(m, lo + k, hi) + [decompose(lo, lo + k)]
    }

    /// Proof that the tree of size `from` is a prefix of the tree of size `to` (0 < from < to).
    static func consistency(from: Int64, to: Int64) -> [[NodeID]] {
        subproof(from, 0, to, true)
    }

    private static func subproof(_ m: Int64, _ lo: Int64, _ hi: Int64, _ complete: Bool) -> [[NodeID]] {
        if m == hi - lo {
            return complete ? [] : [decompose(lo, hi)]
        }
        let k = Int64(MerkleTree.largestPowerOfTwo(below: Int(hi - lo)))
        if m <= k {
            return subproof(m, lo, lo + k, complete) + [decompose(lo + k, hi)]
        }
        return subproof(m - k, lo + k, hi, false) + [decompose(lo, lo + k)]
    }

    /// Right fold: H(n1, H(n2, … nk)), which is MTH over the range the nodes cover.
    static func fold(_ hashes: [[UInt8]]) -> [UInt8] {
        guard var accumulator = hashes.last else { return MerkleTree.emptyRoot }
        for hash in hashes.dropLast().reversed() {
            accumulator = MerkleTree.nodeHash(hash, accumulator)
        }
        return accumulator
    }
}
