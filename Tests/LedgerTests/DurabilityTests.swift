import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import PostgresNIO
import TestSupport
import Testing

/// Restarts, several processes on one database, and tampering behind the API.
@Suite struct DurabilityTests {
    @Test func restartContinuesTheSameTree() async throws {
        let fixture = try await LedgerFixture.make("restart")
        let token = try await fixture.appendToken()
        let first = try await fixture.app().test(.router) { client in
            let reply = try await client.append((0..<10).map { testEntry($0) }, token: token, wait: true)
            return try Checkpoint.verified(note: reply["checkpoint"]!.stringValue!, verifier: fixture.signer.verifier)
        }
        try await fixture.app().test(.router) { client in
            // The old checkpoint is served before anything new is appended.
            let served = try Checkpoint.verified(note: try await client.getText("/checkpoint"), verifier: fixture.signer.verifier)
            #expect(served == first)
            // Re-sending acknowledged entries does not duplicate them.
            #expect(try await client.append((0..<10).map { testEntry($0) }, token: token).indices == (0..<10).map(Int64.init))
            let reply = try await client.append((10..<17).map { testEntry($0) }, token: token, wait: true)
            let second = try Checkpoint.verified(note: reply["checkpoint"]!.stringValue!, verifier: fixture.signer.verifier)
            #expect(second.size == 17)
            let proof = try await client.getJSON("/proofs/consistency?from=10&to=17")
            try MerkleProofVerifier.verifyConsistency(from: 10, to: 17, root1: first.rootHash, root2: second.rootHash, proof: proof["hashes"]!.hashes)
        }
    }

    @Test func concurrentWritersOnOneDatabaseNeverFork() async throws {
        let fixture = try await LedgerFixture.make("concurrent")
        let token = try await fixture.appendToken()
        let appA = try await fixture.app()
        let appB = try await fixture.app()
        try await appA.test(.router) { clientA in
            try await appB.test(.router) { clientB in
                let indices = try await withThrowingTaskGroup(of: [Int64].self) { group in
                    for task in 0..<64 {
                        let client: any TestClientProtocol = task.isMultiple(of: 2) ? clientA : clientB
                        group.addTask {
                            var mine: [Int64] = []
                            for n in 0..<4 {
                                mine += try await client.append([testEntry(task * 4 + n, tag: "c")], token: token).indices
                            }
                            return mine
                        }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
                #expect(indices.sorted() == (0..<256).map(Int64.init))
                // Both processes serve one tree: rebuild it from the stored entries and compare.
                var leaves: [[UInt8]] = []
                for index in 0..<256 {
                    leaves.append(Array(try await clientA.execute(uri: "/entries/\(index)", method: .get).body.readableBytesView))
                }
                // Each process must come to serve a checkpoint of all 256 with the reference root.
                for client in [clientA, clientB] as [any TestClientProtocol] {
                    var checkpoint = try Checkpoint.verified(note: try await client.getText("/checkpoint"), verifier: fixture.signer.verifier)
                    for _ in 0..<100 where checkpoint.size < 256 {
                        try await Task.sleep(for: .milliseconds(50))
                        checkpoint = try Checkpoint.verified(note: try await client.getText("/checkpoint"), verifier: fixture.signer.verifier)
                    }
                    #expect(checkpoint.size == 256)
                    #expect(checkpoint.rootHash == MerkleReference.root(leaves[...]))
                }
                let proof = try await clientA.getJSON("/proofs/inclusion?index=17&size=256")
                try MerkleProofVerifier.verifyInclusion(
                    index: 17, size: 256, leafHash: MerkleTree.leafHash(leaves[17]), proof: proof["hashes"]!.hashes,
                    root: MerkleReference.root(leaves[...])
                )
            }
        }
        // Every checkpoint either process signed is consistent with every later one.
        try await withPostgres(fixture.databaseURL) { postgres in
            var checkpoints: [Checkpoint] = []
            for try await note in try await postgres.query("SELECT note FROM checkpoints ORDER BY size", logger: testLogger).decode(String.self) {
                checkpoints.append(try Checkpoint.verified(note: note, verifier: fixture.signer.verifier))
            }
            #expect(checkpoints.count >= 2)
            let leaves = try await Self.storedLeaves(postgres)
            for checkpoint in checkpoints {
                #expect(checkpoint.rootHash == MerkleReference.root(leaves[0..<Int(checkpoint.size)]))
            }
        }
    }

    @Test func logRowsCannotBeRewrittenAndCorruptTilesStopTheWriter() async throws {
        let fixture = try await LedgerFixture.make("tamper")
        let token = try await fixture.appendToken()
        let before = try await fixture.app().test(.router) { client in
            let reply = try await client.append((0..<20).map { testEntry($0) }, token: token, wait: true)
            return try Checkpoint.verified(note: reply["checkpoint"]!.stringValue!, verifier: fixture.signer.verifier)
        }
        try await withPostgres(fixture.databaseURL) { postgres in
            await #expect(throws: (any Error).self) {
                try await postgres.query("UPDATE leaves SET data = '\\x00' WHERE idx = 3", logger: testLogger)
            }
            await #expect(throws: (any Error).self) { try await postgres.query("DELETE FROM checkpoints", logger: testLogger) }
            // Tiles are rewritten as they grow, so a trigger cannot guard them; the writer's own check must.
            try await postgres.query("UPDATE tiles SET hashes = overlay(hashes placing '\\xffff' from 1) WHERE level = 0 AND idx = 0", logger: testLogger)
        }
        try await fixture.app().test(.router) { client in
            let response = try await client.execute(
                uri: "/entries", method: .post, headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"entries":[{"idempotencyKey":"after","entry":{"n":1}}]}"#)
            )
            #expect(response.status == .serviceUnavailable)
            try await Task.sleep(for: .milliseconds(200))
            let served = try Checkpoint.verified(note: try await client.getText("/checkpoint"), verifier: fixture.signer.verifier)
            #expect(served == before)
        }
        try await withPostgres(fixture.databaseURL) { postgres in
            let count = try await postgres.query("SELECT count(*) FROM checkpoints WHERE size > 20", logger: testLogger).decode(Int64.self)
            for try await n in count { #expect(n == 0) }
        }
    }

    static func storedLeaves(_ postgres: PostgresClient) async throws -> [[UInt8]] {
        var leaves: [[UInt8]] = []
        for try await data in try await postgres.query("SELECT data FROM leaves ORDER BY idx", logger: testLogger).decode(ByteBuffer.self) {
            leaves.append(Array(data.readableBytesView))
        }
        return leaves
    }
}
