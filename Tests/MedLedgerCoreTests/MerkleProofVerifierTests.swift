import MedLedgerCore
import TestSupport
import Testing

@Suite struct MerkleProofVerifierTests {
    /// RFC 6962 test tree of 8 leaves (the one behind the RFC and the transparency-dev vectors).
    static let rfcLeaves: [[UInt8]] = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .map { Hex.decode($0)! }

    @Test func knownRootsOfTheRFCTestTree() {
        let expected = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4", "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c", "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ]
        for size in 1...8 {
            #expect(MerkleReference.root(Self.rfcLeaves[0..<size]).hexString == expected[size - 1])
        }
    }

    @Test func acceptsEveryInclusionProofAndRejectsTamperedOnes() throws {
        let leaves = MerkleReference.leaves(71)
        for size in 1...70 {
            let root = MerkleReference.root(leaves[0..<size])
            let nextRoot = MerkleReference.root(leaves[0...size])
            for index in 0..<size {
                let hash = MerkleTree.leafHash(leaves[index])
                let proof = MerkleReference.path(index, leaves[0..<size])
                try MerkleProofVerifier.verifyInclusion(index: Int64(index), size: Int64(size), leafHash: hash, proof: proof, root: root)
                for tampered in Self.tamperings(of: proof) {
                    #expect(throws: ProofError.self) {
                        try MerkleProofVerifier.verifyInclusion(index: Int64(index), size: Int64(size), leafHash: hash, proof: tampered, root: root)
                    }
                }
                if size > 1 {
                    let otherIndex = Int64((index + 1) % size)
                    #expect(throws: ProofError.self) {
                        try MerkleProofVerifier.verifyInclusion(index: otherIndex, size: Int64(size), leafHash: hash, proof: proof, root: root)
                    }
                }
                // A proof for one tree size does not prove inclusion in the next tree.
                #expect(throws: ProofError.self) {
                    try MerkleProofVerifier.verifyInclusion(index: Int64(index), size: Int64(size + 1), leafHash: hash, proof: proof, root: nextRoot)
                }
            }
        }
    }

    @Test func acceptsEveryConsistencyProofAndRejectsTamperedOnes() throws {
        let leaves = MerkleReference.leaves(40)
        for size2 in 1...40 {
            let root2 = MerkleReference.root(leaves[0..<size2])
            for size1 in 1...size2 {
                let root1 = MerkleReference.root(leaves[0..<size1])
                let proof = MerkleReference.consistency(size1, leaves[0..<size2])
                try MerkleProofVerifier.verifyConsistency(from: Int64(size1), to: Int64(size2), root1: root1, root2: root2, proof: proof)
                for tampered in Self.tamperings(of: proof) {
                    #expect(throws: ProofError.self) {
                        try MerkleProofVerifier.verifyConsistency(from: Int64(size1), to: Int64(size2), root1: root1, root2: root2, proof: tampered)
                    }
                }
                if size1 < size2 {
                    #expect(throws: ProofError.self) {
                        try MerkleProofVerifier.verifyConsistency(from: Int64(size1), to: Int64(size2), root1: root2, root2: root1, proof: proof)
                    }
                }
            }
        }
    }

    @Test func edgeCasesOfConsistency() throws {
        let root = MerkleReference.root(MerkleReference.leaves(3)[...])
        try MerkleProofVerifier.verifyConsistency(from: 3, to: 3, root1: root, root2: root, proof: [])
        // From the empty tree there is nothing to prove; transparency-dev's verifier rejects it too.
        #expect(throws: ProofError.self) { try MerkleProofVerifier.verifyConsistency(from: 0, to: 3, root1: MerkleTree.emptyRoot, root2: root, proof: []) }
        #expect(throws: ProofError.self) { try MerkleProofVerifier.verifyConsistency(from: 1, to: 3, root1: [1, 2], root2: root, proof: [root]) }
        #expect(throws: ProofError.self) { try MerkleProofVerifier.verifyConsistency(from: 3, to: 3, root1: root, root2: MerkleTree.emptyRoot, proof: []) }
        #expect(throws: ProofError.self) { try MerkleProofVerifier.verifyConsistency(from: 3, to: 2, root1: root, root2: root, proof: []) }
        #expect(throws: ProofError.self) { try MerkleProofVerifier.verifyConsistency(from: 0, to: 3, root1: root, root2: root, proof: [root]) }
        #expect(throws: ProofError.self) { try MerkleProofVerifier.verifyConsistency(from: 1, to: 3, root1: root, root2: root, proof: []) }
    }

    /// Every single-bit flip of every hash, plus dropped, duplicated and appended hashes.
    static func tamperings(of proof: [[UInt8]]) -> [[[UInt8]]] {
        var variants: [[[UInt8]]] = []
        for i in proof.indices {
            for bit in [0, 7, 130, 255] {
                var copy = proof
                copy[i][bit / 8] ^= 1 << (bit % 8)
                variants.append(copy)
            }
            var dropped = proof
            dropped.remove(at: i)
            variants.append(dropped)
        }
        variants.append(proof + [MerkleTree.emptyRoot])
        if let first = proof.first { variants.append([first] + proof) }
        return variants
    }
}
