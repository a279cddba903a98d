import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// `audit_anchors`: one row per chain size anchored in the ledger, with where the ledger put it.
enum AnchorStore {
    struct Anchor: Sendable {
        var entry: ChainHeadEntry
        var leafIndex: Int64
        var checkpointSize: Int64
        var checkpoint: String
        var proof: [UInt8]
    }

    /// The head as the writer left it, and the largest size anchored so far (0 for none).
    static func headAndLastAnchor(_ postgres: PostgresClient, logger: Logger) async throws -> (head: ChainStore.Head, lastAnchored: Int64) {
        let rows = try await postgres.query(
            "SELECT h.seq, h.hash, (SELECT coalesce(max(seq), 0) FROM audit_anchors) FROM audit_chain_head h",
            logger: logger
        )
        for try await (seq, hash, anchored) in rows.decode((Int64, ByteBuffer, Int64).self) {
            return (ChainStore.Head(seq: seq, hash: Array(hash.readableBytesView)), anchored)
        }
        throw AuditStorageError("the audit_chain_head row is missing")
    }

    /// Stores an anchor; another audit process may have stored the same size first, which is the same anchor.
    static func insert(_ anchor: Anchor, _ postgres: PostgresClient, logger: Logger) async throws {
        try await postgres.query(
            """
            INSERT INTO audit_anchors (seq, head, leaf_index, checkpoint_size, checkpoint, proof)
            VALUES (\(anchor.entry.size), \(ByteBuffer(bytes: anchor.entry.head)), \(anchor.leafIndex), \(anchor.checkpointSize),
                \(anchor.checkpoint), \(ByteBuffer(bytes: anchor.proof)))
            ON CONFLICT (seq) DO NOTHING
            """,
            logger: logger
        )
    }

    /// The anchors of sizes in `range`, in order.
    static func anchors(in range: ClosedRange<Int64>, on connection: PostgresConnection, logger: Logger) async throws -> [Anchor] {
        let rows = try await connection.query(
            """
            SELECT seq, head, leaf_index, checkpoint_size, checkpoint, proof FROM audit_anchors
            WHERE seq BETWEEN \(range.lowerBound) AND \(range.upperBound) ORDER BY seq
            """,
            logger: logger
        )
        var anchors: [Anchor] = []
        for try await (seq, head, leaf, size, note, proof) in rows.decode((Int64, ByteBuffer, Int64, Int64, String, ByteBuffer).self) {
            anchors.append(
                Anchor(
                    entry: ChainHeadEntry(size: seq, head: Array(head.readableBytesView)),
                    leafIndex: leaf,
                    checkpointSize: size,
                    checkpoint: note,
                    proof: Array(proof.readableBytesView)
                )
            )
        }
        return anchors
    }
}
