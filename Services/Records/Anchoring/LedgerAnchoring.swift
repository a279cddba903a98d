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
    let client: ServiceClient
    let entriesURL: URL
    let verifier: NoteVerifier?
    let batchLimit: Int
    let logger: Logger

    struct BadAnswer: Error, CustomStringConvertible {
        var description: String
    }

    func deliverBatch() async throws -> Int {
        try await Database.transaction(postgres, logger: logger) { connection in
            let rows = try await connection.query(
                """
                SELECT seq, idempotency_key, entry FROM ledger_outbox WHERE anchored_at IS NULL
                ORDER BY seq LIMIT \(batchLimit) FOR UPDATE SKIP LOCKED
                """,
                logger: logger)
            var pending: [(seq: Int64, key: String, entry: String)] = []
            for try await row in rows.decode((Int64, String, String).self) { pending.append(row) }
            guard !pending.isEmpty else { return 0 }
            let body = JSONValue.object([
                (
                    "entries",
                    .array(
                        try pending.map { row in
                            .object([("idempotencyKey", .string(row.key)), ("entry", try JSONParser.parse(Array(row.entry.utf8)))])
                        })
                )
            ])
            let answer = try await client.post(entriesURL, json: body, timeout: .seconds(30), logger: logger)
            let anchors = try anchors(answer, for: pending)
            // clock_timestamp: when the anchor is stored, not when this transaction began (before the call).
            try await connection.query(
                """
                WITH c AS (INSERT INTO ledger_checkpoints (size, note) VALUES (\(anchors.size), \(anchors.note)) ON CONFLICT (size) DO NOTHING)
                UPDATE ledger_outbox o SET leaf_index = a.idx, checkpoint_size = \(anchors.size), proof = a.proof, anchored_at = clock_timestamp()
                FROM unnest(\(pending.map(\.seq))::bigint[], \(anchors.indices)::bigint[], \(anchors.proofs.map { ByteBuffer(bytes: $0) })::bytea[])
                    AS a(seq, idx, proof)
                WHERE o.seq = a.seq
                """,
                logger: logger)
            return pending.count
        }
    }

    /// The ledger's answer, checked entry by entry: right keys in order, and each entry's bytes
    /// proven under the signed checkpoint. A ledger that answers wrongly gets nothing stored.
    private func anchors(_ answer: JSONValue, for pending: [(seq: Int64, key: String, entry: String)]) throws -> (
        indices: [Int64], proofs: [[UInt8]], size: Int64, note: String
    ) {
        guard let note = answer["checkpoint"]?.stringValue, let entries = answer["entries"]?.arrayValue, entries.count == pending.count else {
            throw BadAnswer(description: "the ledger's answer lacks the checkpoint or some entries")
        }
        var indices: [Int64] = []
        var proofs: [[UInt8]] = []
        var size: Int64 = 0
        for (row, answered) in zip(pending, entries) {
            guard answered["idempotencyKey"]?.stringValue == row.key, case .number(let text)? = answered["index"], let index = Int64(text),
                let hashes = answered["inclusionProof"]?.arrayValue?.map({ $0.stringValue.flatMap { Base64.decode($0) } ?? [] })
            else { throw BadAnswer(description: "the ledger's answer for \(row.key) is malformed") }
            do {
                size = try AnchorProof.check(entry: Array(row.entry.utf8), index: index, proof: hashes, checkpoint: note, verifier: verifier).size
            } catch {
                throw BadAnswer(description: "the ledger's proof for \(row.key) does not verify: \(error.message)")
            }
            indices.append(index)
            proofs.append(hashes.flatMap { $0 })
        }
        return (indices, proofs, size, note)
    }
}
