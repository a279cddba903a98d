import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// What chain verification reads: the rows in seq order a chunk at a time (a million events are
/// never in memory at once), and the chain's end as stored.
enum ChainReads {
    struct Row: Sendable {
        var seq: Int64
        var text: [UInt8]
        var hash: [UInt8]
    }

    /// The last stored event and the head row, from one snapshot (the writer moves both in one
    /// transaction, so they can only disagree if someone edited the table).
    struct End: Sendable {
        var lastSeq: Int64
        var lastHash: [UInt8]?
        var head: ChainStore.Head
    }

    static func end(on connection: PostgresConnection, logger: Logger) async throws -> End {
        let rows = try await connection.query(
            """
            SELECT h.seq, h.hash, l.seq, l.hash FROM audit_chain_head h
            LEFT JOIN LATERAL (SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1) l ON true
            """,
            logger: logger
        )
        for try await (headSeq, headHash, lastSeq, lastHash) in rows.decode((Int64, ByteBuffer, Int64?, ByteBuffer?).self) {
            return End(
                lastSeq: lastSeq ?? 0,
                lastHash: lastHash.map { Array($0.readableBytesView) },
                head: ChainStore.Head(seq: headSeq, hash: Array(headHash.readableBytesView))
            )
        }
        throw AuditStorageError("the audit_chain_head row is missing")
    }

    static func hash(at seq: Int64, on connection: PostgresConnection, logger: Logger) async throws -> [UInt8]? {
        let rows = try await connection.query("SELECT hash FROM audit_events WHERE seq = \(seq)", logger: logger)
        for try await hash in rows.decode(ByteBuffer.self) { return Array(hash.readableBytesView) }
        return nil
    }

    /// Up to `limit` rows from `start` to `end`, in seq order.
    static func rows(from start: Int64, to end: Int64, limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [Row] {
        let rows = try await connection.query(
            "SELECT seq, event, hash FROM audit_events WHERE seq BETWEEN \(start) AND \(end) ORDER BY seq LIMIT \(limit)",
            logger: logger
        )
        var chunk: [Row] = []
        chunk.reserveCapacity(limit)
        for try await (seq, text, hash) in rows.decode((Int64, String, ByteBuffer).self) {
            chunk.append(Row(seq: seq, text: Array(text.utf8), hash: Array(hash.readableBytesView)))
        }
        return chunk
    }

    /// The largest anchored size beyond `seq` whose event is not stored: events deleted at the
    /// tail. (An anchor of an event appended since verification began has its row.)
    static func anchoredBeyond(_ seq: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int64? {
        let rows = try await connection.query(
            """
            SELECT max(a.seq) FROM audit_anchors a
            WHERE a.seq > \(seq) AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.seq = a.seq)
            """,
            logger: logger
        )
        for try await size in rows.decode(Int64?.self) { return size }
        return nil
    }
}
