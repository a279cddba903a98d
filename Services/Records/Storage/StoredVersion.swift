import NIOCore
import HTTPTypes
import Foundation
import MedLedgerCore
import PostgresNIO

/// One stored version, as read from `resource_versions` (body still sealed).
struct StoredVersion: Sendable {
    var type: ResourceType
    var id: String
    var version: Int
    var lastUpdated: Int64
    var deleted: Bool
    var patient: String?
    var status: String?
    var author: String?
    var keyOwner: String
    var sealedBody: [UInt8]?
    var seq: Int64

    /// The columns `decode` expects, from `resource_versions` aliased `v`.
    static let columns = "v.type, v.id, v.version, v.last_updated, v.deleted, v.patient, v.status, v.author, v.key_owner, v.body, v.seq"

    static func decode(_ rows: PostgresRowSequence) async throws -> [StoredVersion] {
        var versions: [StoredVersion] = []
        for try await row in rows { versions.append(try decode(row)) }
        return versions
    }

    typealias Columns = (String, String, Int, Int64, Bool, String?, String?, String?, String, ByteBuffer?, Int64)

    static func decode(_ row: PostgresRow) throws -> StoredVersion {
        try make(row.decode(Columns.self))
    }

    static func make(_ c: Columns) throws -> StoredVersion {
        guard let type = ResourceType(rawValue: c.0) else { throw Problem(.internalServerError, "unknown stored type \(c.0)") }
        return StoredVersion(
            type: type, id: c.1, version: c.2, lastUpdated: c.3, deleted: c.4, patient: c.5, status: c.6, author: c.7, keyOwner: c.8,
            sealedBody: c.9.map { Array($0.readableBytesView) }, seq: c.10)
    }

    var lastUpdatedDate: Date { Micros.date(lastUpdated) }
    var reference: String { "\(type.rawValue)/\(id)" }
    var versionReference: String { "\(type.rawValue)/\(id)/_history/\(version)" }
}

extension DataKeyStore {
    /// The plaintext JSON of a stored version (nil for a deletion). A destroyed data key means
    /// the data was erased on purpose: 410, like a deletion.
    func open(_ stored: StoredVersion, on connection: PostgresConnection? = nil, logger: Logger) async throws -> [UInt8]? {
        guard let sealed = stored.sealedBody else { return nil }
        guard let key = try await existingKey(for: stored.keyOwner, on: connection, logger: logger) else {
            throw Problem(.gone, "\(stored.reference) was erased (its data key was destroyed)")
        }
        do {
            return try ResourceCipher.open(sealed, key: key, context: ResourceCipher.versionContext(stored.type, stored.id, stored.version))
        } catch {
            logger.error("a stored body failed authentication", metadata: ["resource": "\(stored.versionReference)"])
            throw Problem(.internalServerError, "a stored version failed its integrity check; the operator has been told")
        }
    }
}
