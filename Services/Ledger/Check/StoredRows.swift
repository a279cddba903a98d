import Logging
import NIOCore
import PostgresNIO

/// Rows of one table in key order, read a chunk at a time (`key >= from ORDER BY key LIMIT n`),
/// so that a check over millions of rows holds only one chunk. The queries run on the check's
/// own connection, between (never inside) other queries' row streams.
struct StoredRows<Row> {
    typealias Fetch = (_ from: Int64, _ limit: Int) async throws -> [Row]

    private let fetch: Fetch
    private let key: (Row) -> Int64
    private let chunkSize: Int
    private var buffered: [Row] = []
    private var position = 0
    private var from: Int64
    private var exhausted = false

    init(from: Int64 = 0, chunkSize: Int, key: @escaping (Row) -> Int64, fetch: @escaping Fetch) {
        self.from = from
        self.chunkSize = chunkSize
        self.key = key
        self.fetch = fetch
    }

    mutating func peek() async throws -> Row? {
        if position == buffered.count {
            guard !exhausted else { return nil }
            buffered = try await fetch(from, chunkSize)
            position = 0
            exhausted = buffered.count < chunkSize
            guard let last = buffered.last else { return nil }
            from = key(last) + 1
        }
        return buffered[position]
    }

    mutating func next() async throws -> Row? {
        let row = try await peek()
        if row != nil { position += 1 }
        return row
    }
}

struct StoredCheckpoint {
    var size: Int64
    var root: [UInt8]
    var note: String
}

struct StoredTile {
    var index: Int64
    var bytes: [UInt8]
}

extension StoredRows where Row == StoredCheckpoint {
    static func checkpoints(on connection: PostgresConnection, logger: Logger) -> Self {
        StoredRows(chunkSize: 256, key: \.size) { from, limit in
            let rows = try await connection.query(
                "SELECT size, root, note FROM checkpoints WHERE size >= \(from) ORDER BY size LIMIT \(limit)",
                logger: logger
            )
            var checkpoints: [StoredCheckpoint] = []
            for try await (size, root, note) in rows.decode((Int64, ByteBuffer, String).self) {
                checkpoints.append(StoredCheckpoint(size: size, root: Array(root.readableBytesView), note: note))
            }
            return checkpoints
        }
    }
}

extension StoredRows where Row == StoredTile {
    /// Tiles of one level from index `from` on; 64 tiles are at most 512 KiB.
    static func tiles(level: Int, from: Int64, on connection: PostgresConnection, logger: Logger) -> Self {
        StoredRows(from: from, chunkSize: 64, key: \.index) { from, limit in
            let rows = try await connection.query(
                "SELECT idx, hashes FROM tiles WHERE level = \(Int32(level)) AND idx >= \(from) ORDER BY idx LIMIT \(limit)",
                logger: logger
            )
            var tiles: [StoredTile] = []
            for try await (index, hashes) in rows.decode((Int64, ByteBuffer).self) {
                tiles.append(StoredTile(index: index, bytes: Array(hashes.readableBytesView)))
            }
            return tiles
        }
    }
}
