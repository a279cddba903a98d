/// RFC 9162 section 2.1.3.2 and 2.1.4.2 proof verification. Used offline by the CLI and, as a
/// self-check, by the ledger before it signs a checkpoint.
public struct ProofError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum MerkleProofVerifier {
    /// Computes the root that an inclusion proof implies; throws when the proof's shape is wrong.
    public static func rootFromInclusionProof(
        index: Int64,
        size: Int64,
        leafHash: [UInt8],
        proof: [[UInt8]]
    ) throws(ProofError) -> [UInt8] {
        guard index >= 0, size > 0, index < size else { throw ProofError("index \(index) is not inside a tree of size \(size)") }
        guard leafHash.count == MerkleTree.hashSize, proof.allSatisfy({ $0.count == MerkleTree.hashSize }) else {
            throw ProofError("hashes must be 32 bytes")
        }
        var fn = index
        var sn = size - 1
        var r = leafHash
        for p in proof {
            guard sn != 0 else { throw ProofError("inclusion proof is too long") }
            if fn & 1 == 1 || fn == sn {
                r = MerkleTree.nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = MerkleTree.nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw ProofError("inclusion proof is too short") }
        return r
    }

    public static func verifyInclusion(
        index: Int64,
        size: Int64,
        leafHash: [UInt8],
        proof: [[UInt8]],
        root: [UInt8]
    ) throws(ProofError) {
        let computed = try rootFromInclusionProof(index: index, size: size, leafHash: leafHash, proof: proof)
        guard computed == root else { throw ProofError("inclusion proof does not lead to the expected root") }
    }

    public static func verifyConsistency(
        from size1: Int64,
        to size2: Int64,
        root1: [UInt8],
        root2: [UInt8],
        proof: [[UInt8]]
    ) throws(ProofError) {
        // A proof from the empty tree proves nothing (as transparency-dev's verifier holds).
        guard size1 >= 1 else { throw ProofError("consistency needs a first tree of size at least 1") }
        guard size2 >= size1 else { throw ProofError("size \(size2) is smaller than size \(size1)") }
        if size1 == size2 {
            guard proof.isEmpty else { throw ProofError("proof between equal sizes must be empty") }
            guard root1 == root2 else { throw ProofError("equal sizes with different roots") }
            return
        }
        guard root1.count == MerkleTree.hashSize, root2.count == MerkleTree.hashSize, proof.allSatisfy({ $0.count == MerkleTree.hashSize })
        else { throw ProofError("hashes must be 32 bytes") }
        guard !proof.isEmpty else { throw ProofError("empty consistency proof") }
        var path = proof
        if size1 & (size1 - 1) == 0 { path.insert(root1, at: 0) }
        var fn = size1 - 1
        var sn = size2 - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else { throw ProofError("consistency proof is too long") }
            if fn & 1 == 1 || fn == sn {
                fr = MerkleTree.nodeHash(c, fr)
                sr = MerkleTree.nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = MerkleTree.nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw ProofError("consistency proof is too short") }
        guard fr == root1 else { throw ProofError("consistency proof does not match the first root") }
        guard sr == root2 else { throw ProofError("consistency proof does not match the second root") }
    }
}
