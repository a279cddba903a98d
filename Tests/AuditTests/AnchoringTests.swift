import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import PostgresNIO
import TestSupport
import Testing

@testable import Audit

/// Anchoring in a real ledger (in-process, on a free port) and what verification makes of the
/// anchors: an edit whose later hashes were all recomputed, deleted events at the end, a ledger
/// that cannot be reached.
@Suite struct AnchoringTests {
    @Test func theHeadIsAnchoredAndAnchorsCatchARewrittenChain() async throws {
        let fixture = try await AuditFixture.make("anchor")
        let peer = try await LedgerPeerFixture.make()
        try await peer.ledger(fixture.tokens).test(.live) { ledger in
            try await tokenEndpoint(fixture.tokens).test(.live) { identity in
                let app = try await fixture.app(peer.auditVariables(ledgerPort: ledger.port!, identityPort: identity.port!))
                try await app.test(.router) { client in
                    let admin = try await fixture.admin()
                    try await fixture.store(1...5, on: client)
                    try await fixture.waitForAnchor(5)
                    try await fixture.store(6...8, on: client)
                    try await fixture.waitForAnchor(8)
                    let anchors = try await AnchorRows.read(fixture)
                    #expect(anchors.map(\.seq) == [5, 8], "the head is anchored when it moved, once per size")
                    // The ledger holds the entry, byte for byte, at the stored leaf.
                    let stored = try await fixture.storedEvents()
                    let expected = #"{"head":"\#(stored[7].hash.base64String)","size":8,"type":"audit-chain-head","v":1}"#
                    #expect(try await ledger.send(.get, "/entries/\(anchors[1].leaf)", token: nil).text == expected)
                    #expect(anchors[1].head == stored[7].hash)

                    let intact = try await client.verifyChain(token: admin)
                    #expect(intact.valid == true, "\(intact.json.serializedString)")
                    #expect(intact.anchors?["checked"]?.intValue == 2 && intact.anchors?["confirmedInLedger"]?.intValue == 2)
                    #expect(intact.anchors?["lastAnchoredSeq"]?.intValue == 8 && intact.anchors?["ledgerUnreachable"] == nil)
                    let part = try await client.verifyChain("?from=6&to=7", token: admin)
                    #expect(part.valid == true && part.anchors?["checked"]?.intValue == 0)

                    // Event 3 edited and every later hash recomputed (with a SHA3 of our own): each link holds, the anchors do not.
                    var previous = stored[1].hash
                    var statements: [PostgresQuery] = []
                    for row in stored[2...] {
                        let text = row.seq == 3 ? row.text.replacingOccurrences(of: #""outcome":"0""#, with: #""outcome":"4""#) : row.text
                        var hasher = SHA3_256()
                        hasher.update(data: previous)
                        hasher.update(data: Array(text.utf8))
                        previous = Array(hasher.finalize())
                        statements.append("UPDATE audit_events SET event = \(text), hash = \(ByteBuffer(bytes: previous)) WHERE seq = \(row.seq)")
                    }
                    statements.append("UPDATE audit_chain_head SET hash = \(ByteBuffer(bytes: previous))")
                    try await fixture.tamper(statements)
                    let rewritten = try await client.verifyChain(token: admin)
                    #expect(rewritten.valid == false && rewritten.problemSeqs == [5, 8], "\(rewritten.json.serializedString)")
                    #expect(rewritten.problems.allSatisfy { $0.problem.contains("differs from the head anchored in the ledger") })

                    // Moving the anchor row along does not help: the ledger holds the old head, and
                    // the row's proof and the ledger's entry disagree with it.
                    try await fixture.tamper(["UPDATE audit_anchors SET head = (SELECT hash FROM audit_events WHERE seq = 8) WHERE seq = 8"])
                    let forged = try await client.verifyChain("?from=6", token: admin)
                    #expect(forged.problemSeqs == [8, 8, 8], "\(forged.json.serializedString)")
                    #expect(forged.problems.map(\.problem).contains { $0.contains("the ledger holds at leaf \(anchors[1].leaf)") })
                    #expect(forged.problems.map(\.problem).contains { $0.contains("proof does not verify") })
                    #expect(forged.problems.map(\.problem).contains { $0.contains("is not this anchor") })
                    // Nor does deleting audit's anchor rows: the heads are read from the ledger.
                    try await fixture.tamper(["DELETE FROM audit_anchors"])
                    let unanchored = try await client.verifyChain(token: admin)
                    #expect(unanchored.problemSeqs == [5, 8], "\(unanchored.json.serializedString)")
                    #expect(unanchored.problems.allSatisfy { $0.problem.contains("differs from the head the ledger holds") })
                    #expect(unanchored.anchors?["checked"]?.intValue == 2 && unanchored.anchors?["confirmedInLedger"]?.intValue == 0)
                }
            }
        }
    }

    @Test func deletionAtTheEndAndAnUnreachableLedgerAreTold() async throws {
        let fixture = try await AuditFixture.make("anchortail")
        let peer = try await LedgerPeerFixture.make()
        let variables = try await peer.ledger(fixture.tokens).test(.live) { ledger in
            try await tokenEndpoint(fixture.tokens).test(.live) { identity in
                let variables = peer.auditVariables(ledgerPort: ledger.port!, identityPort: identity.port!)
                try await fixture.app(variables).test(.router) { client in
                    try await fixture.store(1...6, on: client)
                    try await fixture.waitForAnchor(6)
                    // The last two events deleted and the head row set back to cover it up.
                    try await fixture.delete(5...6)
                    try await fixture.tamper(["UPDATE audit_chain_head SET seq = 4, hash = (SELECT hash FROM audit_events WHERE seq = 4)"])
                    let answer = try await client.verifyChain(token: try await fixture.admin())
                    #expect(answer.valid == false && answer.checked == 4, "\(answer.json.serializedString)")
                    #expect(answer.problemSeqs == [6] && answer.problems[0].problem.contains("deleted at the end"))
                    // The anchor rows deleted as well: the ledger still holds the head of 6 events.
                    try await fixture.tamper(["DELETE FROM audit_anchors"])
                    let unanchored = try await client.verifyChain(token: try await fixture.admin())
                    #expect(unanchored.problemSeqs == [6] && unanchored.problems[0].problem.contains("anchored at 6 events"))
                    #expect(unanchored.anchors?["ledgerTreeSize"]?.intValue == 1)
                }
                return variables
            }
        }
        // The ledger is gone: the chain and the anchors' stored proofs are still checked, the rest is said to be unconfirmed.
        let gone = try await AuditFixture.make("anchorgone")
        try await gone.app(variables).test(.router) { client in
            try await gone.store(1...3, on: client)
            try await gone.tamper([
                """
                INSERT INTO audit_anchors (seq, head, leaf_index, checkpoint_size, checkpoint, proof)
                SELECT 3, hash, 0, 1, 'no checkpoint', ''::bytea FROM audit_events WHERE seq = 3
                """
            ])
            let answer = try await client.verifyChain(token: try await gone.admin())
            #expect(answer.anchors?["checked"]?.intValue == 1 && answer.anchors?["confirmedInLedger"]?.intValue == 0)
            #expect(answer.anchors?["ledgerUnreachable"]?.stringValue?.isEmpty == false, "\(answer.json.serializedString)")
            #expect(answer.problems.count == 1 && answer.problems[0].problem.contains("proof does not verify"))
        }
    }

    /// Two audit processes on one database anchor the same heads: each size once in the ledger and in audit.
    @Test func twoProcessesDoNotAnchorASizeTwice() async throws {
        let fixture = try await AuditFixture.make("anchortwo")
        let peer = try await LedgerPeerFixture.make()
        try await peer.ledger(fixture.tokens).test(.live) { ledger in
            try await tokenEndpoint(fixture.tokens).test(.live) { identity in
                let variables = peer.auditVariables(ledgerPort: ledger.port!, identityPort: identity.port!)
                try await fixture.app(variables).test(.router) { first in
                    try await fixture.app(variables).test(.router) { second in
                        try await fixture.store(1...4, on: first)
                        try await fixture.waitForAnchor(4)
                        try await fixture.store(5...9, on: second)
                        try await fixture.waitForAnchor(9)
                        // Both processes had their tick at each size.
                        try await Task.sleep(for: .milliseconds(1500))
                    }
                }
                let anchors = try await AnchorRows.read(fixture)
                #expect(anchors.last?.seq == 9)
                #expect(try await peer.leafCount() == Int64(anchors.count), "one leaf per anchored size")
                #expect(Set(anchors.map(\.leaf)).count == anchors.count)
            }
        }
    }
}

/// `audit_anchors` as stored.
struct AnchorRows {
    var seq: Int64
    var head: [UInt8]
    var leaf: Int64

    static func read(_ fixture: AuditFixture) async throws -> [AnchorRows] {
        try await withPostgres(fixture.databaseURL) { client in
            var rows: [AnchorRows] = []
            let query: PostgresQuery = "SELECT seq, head, leaf_index FROM audit_anchors ORDER BY seq"
            for try await (seq, head, leaf) in try await client.query(query, logger: testLogger).decode((Int64, ByteBuffer, Int64).self) {
                rows.append(AnchorRows(seq: seq, head: Array(head.readableBytesView), leaf: leaf))
            }
            return rows
        }
    }
}
