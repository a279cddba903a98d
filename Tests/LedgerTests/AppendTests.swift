import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import TestSupport
import Testing

@Suite struct AppendTests {
    @Test func repeatedKeysKeepTheirFirstIndex() async throws {
        let fixture = try await LedgerFixture.make("idempotency")
        let token = try await fixture.appendToken()
        try await fixture.app().test(.router) { client in
            let first = try await client.append([testEntry(0), testEntry(1)], token: token)
            #expect(first.indices == [0, 1])
            // Again, plus a new one and a duplicate inside the same request.
            let second = try await client.append([testEntry(1), testEntry(2), testEntry(0), testEntry(2)], token: token)
            #expect(second.indices == [1, 2, 0, 2])
            let checkpoint = try await client.append([testEntry(2)], token: token, wait: true)
            let signed = try Checkpoint.verified(note: checkpoint["checkpoint"]!.stringValue!, verifier: fixture.signer.verifier)
            #expect(signed.size == 3)
            // The stored entry is the RFC 8785 form of what was sent.
            let stored = try await client.execute(uri: "/entries/1", method: .get)
            #expect(String(buffer: stored.body) == #"{"n":1,"tag":"t","v":1,"x":1.5}"#)
            #expect(stored.headers[.contentType] == "application/json")
        }
    }

    @Test func waitForCheckpointCarriesVerifiableProofs() async throws {
        let fixture = try await LedgerFixture.make("wait")
        let token = try await fixture.appendToken()
        try await fixture.app().test(.router) { client in
            let entries = (0..<7).map { testEntry($0) }
            let reply = try await client.append(entries, token: token, wait: true)
            let checkpoint = try Checkpoint.verified(note: reply["checkpoint"]!.stringValue!, verifier: fixture.signer.verifier)
            for (offset, item) in (reply["entries"]?.arrayValue ?? []).enumerated() {
                try MerkleProofVerifier.verifyInclusion(
                    index: item["index"]!.int64!, size: checkpoint.size, leafHash: MerkleTree.leafHash(try leafData(entries[offset].entry)),
                    proof: item["inclusionProof"]!.hashes, root: checkpoint.rootHash
                )
            }
            // And the same through the C2SP tlog-proof, as the CLI checks it offline.
            let proof = try TlogProof.parse(try await client.getText("/entries/4/tlog-proof"))
            #expect(proof.index == 4)
            try proof.verify(leafData: try leafData(entries[4].entry), verifier: fixture.signer.verifier)
            #expect(throws: ProofError.self) { try proof.verify(leafData: try leafData(entries[3].entry), verifier: fixture.signer.verifier) }
        }
    }

    @Test func tilesAndEntryBundlesMatchTheTree() async throws {
        let fixture = try await LedgerFixture.make("tiles")
        let token = try await fixture.appendToken()
        try await fixture.app().test(.router) { client in
            let entries = (0..<300).map { testEntry($0, tag: "tile") }
            _ = try await client.append(entries, token: token, wait: true)
            let leaves = try entries.map { try leafData($0.entry) }
            let full = try await client.execute(uri: "/tile/0/000", method: .get)
            #expect(full.status == .ok)
            #expect(full.headers[.cacheControl]?.contains("immutable") == true)
            #expect(Array(full.body.readableBytesView) == leaves[0..<256].flatMap { MerkleTree.leafHash($0) })
            let partial = try await client.execute(uri: "/tile/0/001.p/44", method: .get)
            #expect(Array(partial.body.readableBytesView) == leaves[256..<300].flatMap { MerkleTree.leafHash($0) })
            let level1 = try await client.execute(uri: "/tile/1/000.p/1", method: .get)
            #expect(Array(level1.body.readableBytesView) == MerkleReference.root(leaves[0..<256]))
            let bundle = try await client.execute(uri: "/tile/entries/001.p/44", method: .get)
            var bytes = bundle.body
            for leaf in leaves[256..<300] {
                let length = bytes.readInteger(as: UInt16.self)
                #expect(length.map(Int.init) == leaf.count)
                #expect(bytes.readBytes(length: leaf.count) == leaf)
            }
            #expect(bytes.readableBytes == 0)
            for missing in ["/tile/0/001", "/tile/0/001.p/45", "/tile/1/000", "/tile/3/000.p/1", "/tile/entries/002.p/1", "/tile/0/x000/001", "/tile/0/1"] {
                let response = try await client.execute(uri: missing, method: .get)
                #expect(response.status == .notFound, "\(missing)")
                #expect(response.headers[.contentType] == "application/problem+json")
            }
        }
    }

    @Test func operationsEndpointsAndPublishedContract() async throws {
        let fixture = try await LedgerFixture.make("ops")
        try await fixture.app().test(.router) { client in
            #expect(try await client.execute(uri: "/health/live", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/health/ready", method: .get).status == .ok)
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            let served = try await client.getText("/openapi.yaml")
            let published = try String(contentsOfFile: repositoryFile("openapi/ledger.yaml"), encoding: .utf8)
            #expect(served == published)
            let echoed = try await client.execute(uri: "/health/live", method: .get, headers: [.requestID: "abc-123"])
            #expect(echoed.headers[.requestID] == "abc-123")
            let generated = try await client.execute(uri: "/health/live", method: .get, headers: [.requestID: "bad id with spaces"])
            #expect(generated.headers[.requestID].map { $0 != "bad id with spaces" && !$0.isEmpty } == true)
        }
    }
}
