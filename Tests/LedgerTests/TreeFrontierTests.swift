@testable import Ledger
import HTTPTypes
import MedLedgerCore
import TestSupport
import Testing

@Suite struct TreeFrontierTests {
    @Test func appendingInAnyChunksGivesTheReferenceRootAndTiles() async throws {
        let leaves = MerkleReference.leaves(1500, salt: "frontier")
        let hashes = leaves.map { MerkleTree.leafHash($0) }
        var generator = SystemRandomNumberGenerator()
        var frontier = TreeFrontier()
        var stored: [TileKey: [[UInt8]]] = [:]
        while frontier.size < Int64(leaves.count) {
            let start = Int(frontier.size)
            let chunk = min(Int.random(in: 1...300, using: &generator), leaves.count - start)
            for write in frontier.append(Array(hashes[start..<start + chunk])) { stored[write.key] = write.hashes }
            #expect(frontier.root == MerkleReference.root(leaves[0..<start + chunk]))
        }
        // Level-0 tiles hold the leaf hashes; level-1 tiles the roots of 256-leaf subtrees.
        #expect(stored[TileKey(level: 0, index: 5)] == Array(hashes[1280..<1500]))
        #expect(stored[TileKey(level: 1, index: 0)]?.count == 5)
        #expect(stored[TileKey(level: 1, index: 0)]?[2] == MerkleReference.root(leaves[512..<768]))
        // Rebuilding from stored tiles reproduces the same frontier.
        let rebuilt = try await TreeFrontier(size: frontier.size) { key in stored[key] ?? [] }
        #expect(rebuilt.root == frontier.root)
        #expect(rebuilt.partial == frontier.partial)
    }

    @Test func proofPlansMatchTheReference() {
        let leaves = MerkleReference.leaves(40)
        let hash: (NodeID) -> [UInt8] = { node in
            let start = Int(node.index) << node.level
            return MerkleReference.root(leaves[start..<start + (1 << node.level)])
        }
        for size in 1...40 {
            for index in 0..<size {
                let plan = ProofPlan.inclusion(index: Int64(index), size: Int64(size))
                #expect(plan.map { ProofPlan.fold($0.map(hash)) } == MerkleReference.path(index, leaves[0..<size]))
            }
            for from in 1..<size where size > 1 {
                let plan = ProofPlan.consistency(from: Int64(from), to: Int64(size))
                #expect(plan.map { ProofPlan.fold($0.map(hash)) } == MerkleReference.consistency(from, leaves[0..<size]))
            }
        }
    }
}
