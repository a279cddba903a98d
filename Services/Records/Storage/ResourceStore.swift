import NIOCore
import Crypto
import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// A version about to be written: the resource as validated and what was derived from it.
struct VersionDraft: Sendable {
    var type: ResourceType
    var id: String
    var resource: JSONValue
    var facts: IndexedFacts
    var keyOwner: String
}

/// What a write stored: the version's row and the exact bytes stored (and served by vread).
struct WrittenVersion: Sendable {
    var stored: StoredVersion
    var body: [UInt8]?
}

/// Writes of resource versions: each in one transaction with its search values and its audit
/// event. Versions are only ever added; `resources` points at the current one.
struct ResourceStore: Sendable {
    let postgres: PostgresClient
    let keys: DataKeyStore

    /// Inserts version `version` of the draft (1 for a create) on a connection inside a transaction.
    func write(
        _ draft: VersionDraft, version: Int, author: String?, key: SymmetricKey, event: RecordsAuditEvent, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> WrittenVersion {
        let now = ResourceStamp.now()
        let body = ResourceStamp.stamp(draft.resource, type: draft.type, id: draft.id, version: version, lastUpdated: now).serialized()
        let sealed = try ResourceCipher.seal(body, key: key, context: ResourceCipher.versionContext(draft.type, draft.id, version))
        let lastUpdated = Micros.of(now)
        let facts = draft.facts
        let type = draft.type.rawValue
        let seq = try await connection.query(
            """
            INSERT INTO resource_versions (type, id, version, last_updated, deleted, patient, status, author, key_owner, body)
            VALUES (\(type), \(draft.id), \(version), \(lastUpdated), false, \(facts.patient), \(facts.status), \(author), \(draft.keyOwner), \(ByteBuffer(bytes: sealed)))
            RETURNING seq
            """,
            logger: logger
        ).collect().first!.decode(Int64.self)
        if version == 1 {
            try await connection.query(
                """
                INSERT INTO resources (type, id, version, last_updated, deleted, patient, status, author, sort_date, sort_issued)
                VALUES (\(type), \(draft.id), 1, \(lastUpdated), false, \(facts.patient), \(facts.status), \(author), \(facts.sortDate), \(facts.sortIssued))
                """,
                logger: logger
            )
        } else {
            try await connection.query(
                """
                UPDATE resources SET version = \(version), last_updated = \(lastUpdated), deleted = false, patient = \(facts.patient),
                    status = \(facts.status), sort_date = \(facts.sortDate), sort_issued = \(facts.sortIssued)
                WHERE type = \(type) AND id = \(draft.id)
                """,
                logger: logger
            )
            try await connection.query("DELETE FROM search_index WHERE type = \(type) AND id = \(draft.id)", logger: logger)
        }
        try await insertIndex(facts.rows, type: draft.type, id: draft.id, on: connection, logger: logger)
        var event = event
        event.entity = "\(type)/\(draft.id)/_history/\(version)"
        event.patient = facts.patient.flatMap { draft.type == .practitioner ? nil : $0 }
        try await AuditLog.record(event, on: connection, logger: logger)
        let stored = StoredVersion(
            type: draft.type, id: draft.id, version: version, lastUpdated: lastUpdated, deleted: false, patient: facts.patient, status: facts.status,
            author: author, keyOwner: draft.keyOwner, sealedBody: sealed, seq: seq)
        return WrittenVersion(stored: stored, body: body)
    }

    /// Logical delete: a version without a body that keeps the previous version's access
    /// columns, so the same callers learn it is gone (410) and nobody else learns it existed.
    func delete(_ current: StoredVersion, event: RecordsAuditEvent, on connection: PostgresConnection, logger: Logger) async throws -> StoredVersion {
        let version = current.version + 1
        let lastUpdated = Micros.of(ResourceStamp.now())
        let type = current.type.rawValue
        let seq = try await connection.query(
            """
            INSERT INTO resource_versions (type, id, version, last_updated, deleted, patient, status, author, key_owner, body)
            VALUES (\(type), \(current.id), \(version), \(lastUpdated), true, \(current.patient), \(current.status), \(current.author),
                \(current.keyOwner), NULL)
            RETURNING seq
            """,
            logger: logger
        ).collect().first!.decode(Int64.self)
        try await connection.query(
            "UPDATE resources SET version = \(version), last_updated = \(lastUpdated), deleted = true WHERE type = \(type) AND id = \(current.id)",
            logger: logger)
        try await connection.query("DELETE FROM search_index WHERE type = \(type) AND id = \(current.id)", logger: logger)
        var event = event
        event.entity = "\(type)/\(current.id)/_history/\(version)"
        event.patient = current.type == .practitioner ? nil : current.patient
        try await AuditLog.record(event, on: connection, logger: logger)
        var deleted = current
        deleted.version = version
        deleted.lastUpdated = lastUpdated
        deleted.deleted = true
        deleted.sealedBody = nil
        deleted.seq = seq
        return deleted
    }

    private func insertIndex(_ rows: [IndexRow], type: ResourceType, id: String, on connection: PostgresConnection, logger: Logger) async throws {
        guard !rows.isEmpty else { return }
        // Arrays of text with "" for absent values: FHIR forbids empty strings, so "" never is a value.
        let params = rows.map(\.param)
        let systems = rows.map { $0.system ?? "" }
        let codes = rows.map { $0.code ?? "" }
        let refs = rows.map { $0.ref ?? "" }
        let norms = rows.map { $0.norm ?? "" }
        let raws = rows.map { $0.raw ?? "" }
        let lows = rows.map { $0.low.map(String.init) ?? "" }
        let highs = rows.map { $0.high.map(String.init) ?? "" }
        try await connection.query(
            """
            INSERT INTO search_index (type, id, param, system, code, ref, norm, raw, low, high)
            SELECT \(type.rawValue), \(id), p, NULLIF(s, ''), NULLIF(c, ''), NULLIF(r, ''), NULLIF(n, ''), NULLIF(w, ''),
                NULLIF(l, '')::bigint, NULLIF(h, '')::bigint
            FROM unnest(\(params)::text[], \(systems)::text[], \(codes)::text[], \(refs)::text[], \(norms)::text[], \(raws)::text[],
                \(lows)::text[], \(highs)::text[]) AS t(p, s, c, r, n, w, l, h)
            """,
            logger: logger
        )
    }
}
