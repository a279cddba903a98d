import Foundation
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// One delivery of the ledger outbox: claim pending entries (`SKIP LOCKED`, so several records
/// processes share the outbox), send them with their idempotency keys and `?wait=checkpoint`,
/// check every returned proof, and store the anchors. All in one transaction: if anything
/// fails, the rows stay pending and the retry sends the same keys, which the ledger answers
/// with the indices it already gave, so no version is ever anchored twice.
struct LedgerAnchoring: Sendable {
    let postgres: PostgresClient
    let ledger: LedgerAppend
    let batchLimit: Int
    let logger: Logger

    func deliverBatch() async throws -> Int {
        try await Database.transaction(postgres, logger: logger) { connection in
            let rows = try await connection.query(
                """
                SELECT seq, idempotency_key, entry FROM ledger_outbox WHERE anchored_at IS NULL
                ORDER BY seq LIMIT \(batchLimit) FOR UPDATE SKIP LOCKED
                """,
                logger: logger)
            var seqs: [Int64] = []
            var pending: [LedgerAppend.Pending] = []
            for try await (seq, key, entry) in rows.decode((Int64, String, String).self) {
                seqs.append(seq)
                pending.append(.init(key: key, entry: entry))
            }
            guard !pending.isEmpty else { return 0 }
            let anchors = try await ledger.append(pending, logger: logger)
            // clock_timestamp: when the anchor is stored, not when this transaction began (before the call).
            try await connection.query(
                """
                WITH c AS (INSERT INTO ledger_checkpoints (size, note) VALUES (\(anchors.size), \(anchors.note)) ON CONFLICT (size) DO NOTHING)
                UPDATE ledger_outbox o SET leaf_index = a.idx, checkpoint_size = \(anchors.size), proof = a.proof, anchored_at = clock_timestamp()
                FROM unnest(\(seqs)::bigint[], \(anchors.indices)::bigint[], \(anchors.proofs.map { ByteBuffer(bytes: $0) })::bytea[])
                    AS a(seq, idx, proof)
                WHERE o.seq = a.seq
                """,
                logger: logger)
            return pending.count
        }
    }
}
