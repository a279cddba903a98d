import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// Group commit (`GroupCommitQueue`): requests queue their entries; each batch is written in
/// one transaction, and the next starts the moment the previous one committed.
///
/// Several ledger processes may share a database: each batch takes a transaction advisory lock
/// and re-reads the tree size, rebuilding its in-memory frontier when another process appended.
actor Sequencer: Service {
    static let lockKey: Int64 = 0x4D65_644C_6467_0002

    let postgres: PostgresClient
    let tiles: TileStore
    let logger: Logger
    private let queue: GroupCommitQueue<PreparedEntry, Int64>
    private var frontier: TreeFrontier?

    init(postgres: PostgresClient, tiles: TileStore, batchLimit: Int, logger: Logger) {
        self.postgres = postgres
        self.tiles = tiles
        self.logger = logger
        queue = GroupCommitQueue(batchLimit: batchLimit, what: "entries", shutdownMessage: "the ledger is shutting down")
    }

    /// Sequences the entries (in order) and returns their indices once durable.
    func submit(_ entries: [PreparedEntry]) async throws -> [Int64] {
        try await queue.submit(entries)
    }

    func run() async throws {
        await queue.run(logger: logger) { entries in try await self.sequence(entries) }
    }

    private func sequence(_ entries: [PreparedEntry]) async throws -> [Int64] {
        do {
            let (indices, newFrontier) = try await write(entries, frontier: frontier)
            frontier = newFrontier
            return indices
        } catch {
            // Nothing of this batch was committed; the frontier may be stale, so rebuild it next time.
            frontier = nil
            throw error
        }
    }

    private func write(_ entries: [PreparedEntry], frontier cached: TreeFrontier?) async throws -> ([Int64], TreeFrontier) {
        let logger = logger
        let tiles = tiles
        return try await Database.transaction(postgres, logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
            // One statement after the lock (so its snapshot sees every earlier batch): the tree
            // state and which of these idempotency keys already have an index.
            let keys = Array(Set(entries.map(\.idempotencyKey)))
            var size: Int64?
            var root: [UInt8] = []
            var assigned: [String: Int64] = [:]
            let state = try await connection.query(
                """
                SELECT s.size, s.root, k.keys, k.indices FROM tree_state s,
                    LATERAL (SELECT array_agg(idempotency_key) AS keys, array_agg(idx) AS indices
                             FROM leaves WHERE idempotency_key = ANY(\(keys))) k
                WHERE s.id = 1
                """,
                logger: logger
            )
            for try await (storedSize, storedRoot, knownKeys, knownIndices) in state.decode((Int64, ByteBuffer, [String]?, [Int64]?).self) {
                size = storedSize
                root = Array(storedRoot.readableBytesView)
                for (key, index) in zip(knownKeys ?? [], knownIndices ?? []) { assigned[key] = index }
            }
            guard let size else { throw LedgerError.treeDataMissing("tree_state row") }
            var frontier: TreeFrontier
            if let cached, cached.size == size {
                frontier = cached
            } else {
                frontier = try await TreeFrontier(size: size) { key in try await tiles.tileHashes(key, on: connection, logger: logger) }
                guard frontier.root == root else {
                    throw LedgerError.treeCorrupt("stored tiles do not reproduce the stored root at size \(size)")
                }
            }
            // Idempotency: keys seen before keep their first index, also within this batch.
            var indices: [Int64] = []
            var fresh: [PreparedEntry] = []
            var next = size
            for entry in entries {
                if let index = assigned[entry.idempotencyKey] {
                    indices.append(index)
                } else {
                    assigned[entry.idempotencyKey] = next
                    indices.append(next)
                    fresh.append(entry)
                    next += 1
                }
            }
            guard !fresh.isEmpty else { return (indices, frontier) }
            let tileWrites = frontier.append(fresh.map(\.leafHash))
            // All writes in one statement (data-modifying CTEs always run to completion).
            try await connection.query(
                """
                WITH new_leaves AS (
                    INSERT INTO leaves (idx, idempotency_key, data, leaf_hash)
                    SELECT * FROM unnest(\(Array(size..<next))::bigint[], \(fresh.map(\.idempotencyKey))::text[],
                        \(fresh.map { ByteBuffer(bytes: $0.data) })::bytea[], \(fresh.map { ByteBuffer(bytes: $0.leafHash) })::bytea[])
                ), new_tiles AS (
                    INSERT INTO tiles (level, idx, hashes)
                    SELECT * FROM unnest(\(tileWrites.map { Int32($0.key.level) })::integer[], \(tileWrites.map(\.key.index))::bigint[],
                        \(tileWrites.map { ByteBuffer(bytes: $0.hashes.flatMap { $0 }) })::bytea[])
                    ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes
                )
                UPDATE tree_state SET size = \(frontier.size), root = \(ByteBuffer(bytes: frontier.root)), updated_at = now() WHERE id = 1
                """,
                logger: logger
            )
            return (indices, frontier)
        }
    }

    static func treeState(_ connection: PostgresConnection, logger: Logger) async throws -> (Int64, [UInt8]) {
        let rows = try await connection.query("SELECT size, root FROM tree_state WHERE id = 1", logger: logger)
        for try await (size, root) in rows.decode((Int64, ByteBuffer).self) {
            return (size, Array(root.readableBytesView))
        }
        throw LedgerError.treeDataMissing("tree_state row")
    }
}
