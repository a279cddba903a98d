import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import TestSupport
import Testing

/// Appends through the API and checks every proof the service serves against the RFC's naive
/// definitions, across tile boundaries (256 and 65,536 leaves).
@Suite struct ProofsEndToEndTests {
    @Test func everyInclusionAndConsistencyProofVerifies() async throws {
        let fixture = try await LedgerFixture.make("proofs")
        let token = try await fixture.appendToken()
        try await fixture.app().test(.router) { client in
            var leaves: [[UInt8]] = []
            var checkpoints: [Checkpoint] = []
            // Irregular batch sizes so that checkpoints fall on many tree shapes, past one full tile.
            let batchSizes = [1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 100, 1, 255, 3]
            for batch in batchSizes {
                let entries = (leaves.count..<leaves.count + batch).map { testEntry($0) }
                let reply = try await client.append(entries, token: token, wait: true)
                #expect(reply.indices == (leaves.count..<leaves.count + batch).map(Int64.init))
                leaves += try entries.map { try leafData($0.entry) }
                let note = try #require(reply["checkpoint"]?.stringValue)
                let checkpoint = try Checkpoint.verified(note: note, verifier: fixture.signer.verifier)
                #expect(checkpoint.size >= Int64(leaves.count))
                checkpoints.append(checkpoint)
            }
            let final = try Checkpoint.verified(note: try await client.getText("/checkpoint"), verifier: fixture.signer.verifier)
            #expect(final.size == Int64(leaves.count))
            #expect(final.rootHash == MerkleReference.root(leaves[...]))

            for checkpoint in Set(checkpoints.map(\.size)).sorted().compactMap({ size in checkpoints.first { $0.size == size } }) {
                let size = Int(checkpoint.size)
                #expect(checkpoint.rootHash == MerkleReference.root(leaves[0..<size]))
                for index in stride(from: 0, to: size, by: max(1, size / 40)) {
                    let proof = try await client.getJSON("/proofs/inclusion?index=\(index)&size=\(size)")
                    #expect(proof["hashes"]!.hashes == MerkleReference.path(index, leaves[0..<size]))
                    try MerkleProofVerifier.verifyInclusion(
                        index: Int64(index), size: Int64(size), leafHash: MerkleTree.leafHash(leaves[index]), proof: proof["hashes"]!.hashes,
                        root: checkpoint.rootHash
                    )
                }
                for earlier in checkpoints where earlier.size < checkpoint.size {
                    let proof = try await client.getJSON("/proofs/consistency?from=\(earlier.size)&to=\(size)")
                    try MerkleProofVerifier.verifyConsistency(
                        from: earlier.size, to: checkpoint.size, root1: earlier.rootHash, root2: checkpoint.rootHash, proof: proof["hashes"]!.hashes
                    )
                }
            }
            // By leaf hash, with base64url as query strings often carry it.
            let hash = MerkleTree.leafHash(leaves[300]).base64URLString
            let byHash = try await client.getJSON("/proofs/inclusion?leafHash=\(hash)&size=\(leaves.count)")
            #expect(byHash["index"]?.int64 == 300)
        }
    }

    @Test func proofsAcrossTheSecondTileLevel() async throws {
        let fixture = try await LedgerFixture.make("bigtree")
        let token = try await fixture.appendToken()
        let total = 65_536 + 300
        try await fixture.app().test(.router) { client in
            var leaves: [[UInt8]] = []
            while leaves.count < total {
                let batch = min(1000, total - leaves.count)
                let entries = (leaves.count..<leaves.count + batch).map { testEntry($0, tag: "big") }
                _ = try await client.append(entries, token: token)
                leaves += try entries.map { try leafData($0.entry) }
            }
            var checkpoint = try Checkpoint.verified(note: try await client.getText("/checkpoint"), verifier: fixture.signer.verifier)
            for _ in 0..<100 where checkpoint.size < Int64(total) {
                try await Task.sleep(for: .milliseconds(50))
                checkpoint = try Checkpoint.verified(note: try await client.getText("/checkpoint"), verifier: fixture.signer.verifier)
            }
            #expect(checkpoint.size == Int64(total))
            #expect(checkpoint.rootHash == MerkleReference.root(leaves[...]))
            for index in [0, 255, 256, 65_535, 65_536, total - 1] {
                let proof = try await client.getJSON("/proofs/inclusion?index=\(index)&size=\(total)")
                try MerkleProofVerifier.verifyInclusion(
                    index: Int64(index), size: Int64(total), leafHash: MerkleTree.leafHash(leaves[index]), proof: proof["hashes"]!.hashes,
                    root: checkpoint.rootHash
                )
            }
            for from in [1, 256, 65_535, 65_536, 65_537] {
                let proof = try await client.getJSON("/proofs/consistency?from=\(from)&to=\(total)")
                try MerkleProofVerifier.verifyConsistency(
                    from: Int64(from), to: Int64(total), root1: MerkleReference.root(leaves[0..<from]), root2: checkpoint.rootHash,
                    proof: proof["hashes"]!.hashes
                )
            }
            // A level-2 tile exists now and holds the root of the first 65,536 leaves.
            let response = try await client.execute(uri: "/tile/2/000.p/1", method: .get)
            #expect(response.status == .ok)
            #expect(Array(response.body.readableBytesView) == MerkleReference.root(leaves[0..<65_536]))
        }
    }
}
