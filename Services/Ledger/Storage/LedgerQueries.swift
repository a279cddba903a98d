import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// The read queries behind the public endpoints.
struct LedgerQueries: Sendable {
    let postgres: PostgresClient

    func treeSize(logger: Logger) async throws -> Int64 {
        let rows = try await postgres.query("SELECT size FROM tree_state WHERE id = 1", logger: logger)
        for try await size in rows.decode(Int64.self) { return size }
        return 0
    }

    /// The RFC 8785 bytes of entry `index`, if it exists.
    func entry(_ index: Int64, logger: Logger) async throws -> [UInt8]? {
        let rows = try await postgres.query("SELECT data FROM leaves WHERE idx = \(index)", logger: logger)
        for try await data in rows.decode(ByteBuffer.self) { return Array(data.readableBytesView) }
        return nil
    }

    /// The first index whose leaf hash is `leafHash`.
    func index(ofLeafHash leafHash: [UInt8], logger: Logger) async throws -> Int64? {
        let rows = try await postgres.query(
            "SELECT idx FROM leaves WHERE leaf_hash = \(ByteBuffer(bytes: leafHash)) ORDER BY idx LIMIT 1",
            logger: logger
        )
        for try await index in rows.decode(Int64.self) { return index }
        return nil
    }

    /// Entries [first, first + count) in order.
    func entries(from first: Int64, count: Int, logger: Logger) async throws -> [[UInt8]] {
        let rows = try await postgres.query(
            "SELECT data FROM leaves WHERE idx >= \(first) AND idx < \(first + Int64(count)) ORDER BY idx",
            logger: logger
        )
        var result: [[UInt8]] = []
        for try await data in rows.decode(ByteBuffer.self) { result.append(Array(data.readableBytesView)) }
        return result
    }
}
