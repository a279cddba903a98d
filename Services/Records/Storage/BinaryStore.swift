import HTTPTypes
import Crypto
import Foundation
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// What records knows about a stored Binary's content without reading it.
struct BinaryInfo: Sendable {
    var id: String
    var version: Int
    var patient: String?
    var contentType: String
    var size: Int64
    /// SHA-1 of the content (R4 `Attachment.hash`), stored sealed.
    var sha1: [UInt8]
}

/// Binary content, sealed in 64 KiB chunks as it streams in and out.
enum BinaryStore {
    static func sha1Context(_ id: String, _ version: Int) -> String { "Binary/\(id)/_history/\(version)#sha1" }

    /// Seals and stores content arriving in pieces; 413 once it exceeds `limit` (the caller's
    /// transaction then rolls back, so nothing partial remains). The content is hashed as it
    /// passes: SHA-1 for `Attachment.hash`, and the version's commitment under `salt`.
    static func write<Pieces: AsyncSequence>(
        _ pieces: Pieces, id: String, version: Int, contentType: String, key: SymmetricKey, salt: [UInt8], limit: Int,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> (size: Int64, sha1: [UInt8], commitment: [UInt8]) where Pieces.Element == ByteBuffer {
        let cipher = ChunkCipher(key: key, context: "Binary/\(id)/_history/\(version)")
        var hasher = Insecure.SHA1()
        var committer = CommitmentHasher(salt: salt)
        var size: Int64 = 0
        var pending: [UInt8] = []
        var index = 0
        pending.reserveCapacity(ChunkCipher.chunkSize * 2)
        for try await piece in pieces {
            size += Int64(piece.readableBytes)
            guard size <= limit else { throw Problem(.contentTooLarge, "the Binary content is larger than \(limit) bytes") }
            piece.withUnsafeReadableBytes {
                hasher.update(bufferPointer: $0)
                committer.update(bufferPointer: $0)
            }
            pending += piece.readableBytesView
            // Keep the last full chunk back until more arrives: only the end of the stream says which chunk is last.
            while pending.count > ChunkCipher.chunkSize {
                let sealed = try cipher.seal(pending[..<ChunkCipher.chunkSize], index: index, last: false)
                try await insertChunk(id: id, version: version, index: index, sealed: sealed, on: connection, logger: logger)
                pending.removeFirst(ChunkCipher.chunkSize)
                index += 1
            }
        }
        try await insertChunk(id: id, version: version, index: index, sealed: try cipher.seal(pending, index: index, last: true), on: connection, logger: logger)
        let sha1 = Array(hasher.finalize())
        let sealedSHA1 = try ResourceCipher.seal(sha1, key: key, context: sha1Context(id, version))
        try await connection.query(
            """
            INSERT INTO binary_contents (id, version, nonce_prefix, content_type, chunks, size, sealed_sha1)
            VALUES (\(id), \(version), \(ByteBuffer(bytes: cipher.noncePrefix)), \(contentType), \(index + 1), \(size), \(ByteBuffer(bytes: sealedSHA1)))
            """,
            logger: logger
        )
        return (size, sha1, committer.finalize())
    }

    private static func insertChunk(id: String, version: Int, index: Int, sealed: [UInt8], on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "INSERT INTO binary_chunks (id, version, chunk, data) VALUES (\(id), \(version), \(index), \(ByteBuffer(bytes: sealed)))", logger: logger)
    }

    /// The current version's content facts, nil when there is no live Binary `id`.
    static func info(_ id: String, keys: DataKeyStore, on connection: PostgresConnection, logger: Logger) async throws -> BinaryInfo? {
        let rows = try await connection.query(
            """
            SELECT r.version, r.patient, v.key_owner, c.content_type, c.size, c.sealed_sha1
            FROM resources r JOIN resource_versions v ON v.type = r.type AND v.id = r.id AND v.version = r.version
            JOIN binary_contents c ON c.id = r.id AND c.version = r.version
            WHERE r.type = 'Binary' AND r.id = \(id) AND NOT r.deleted
            """,
            logger: logger
        )
        // Collected first: the key lookup below may query the same connection.
        var found: [(Int, String?, String, String, Int64, ByteBuffer)] = []
        for try await row in rows.decode((Int, String?, String, String, Int64, ByteBuffer).self) { found.append(row) }
        for (version, patient, keyOwner, contentType, size, sealedSHA1) in found {
            guard let key = try await keys.existingKey(for: keyOwner, on: connection, logger: logger) else { return nil }
            let sha1 = try ResourceCipher.open(Array(sealedSHA1.readableBytesView), key: key, context: sha1Context(id, version))
            return BinaryInfo(id: id, version: version, patient: patient, contentType: contentType, size: size, sha1: sha1)
        }
        return nil
    }

    /// Streams a version's content, chunk by chunk, checking each chunk's place and the end.
    static func read(
        _ stored: StoredVersion, key: SymmetricKey, postgres: PostgresClient, logger: Logger, into write: (ByteBuffer) async throws -> Void
    ) async throws {
        try await postgres.withConnection { connection in
            let meta = try await connection.query(
                "SELECT nonce_prefix, chunks FROM binary_contents WHERE id = \(stored.id) AND version = \(stored.version)", logger: logger
            ).collect()
            guard let (prefix, chunks) = try meta.first?.decode((ByteBuffer, Int).self) else {
                throw Problem(.internalServerError, "the content of \(stored.versionReference) is missing")
            }
            let cipher = ChunkCipher(key: key, context: "Binary/\(stored.id)/_history/\(stored.version)", noncePrefix: Array(prefix.readableBytesView))
            var expected = 0
            let rows = try await connection.query(
                "SELECT chunk, data FROM binary_chunks WHERE id = \(stored.id) AND version = \(stored.version) ORDER BY chunk", logger: logger)
            for try await (index, sealed) in rows.decode((Int, ByteBuffer).self) {
                guard index == expected else { throw Problem(.internalServerError, "a chunk of \(stored.versionReference) is missing") }
                try await write(ByteBuffer(bytes: try cipher.open(Array(sealed.readableBytesView), index: index, last: index == chunks - 1)))
                expected += 1
            }
            guard expected == chunks else { throw Problem(.internalServerError, "the content of \(stored.versionReference) is truncated") }
        }
    }
}
