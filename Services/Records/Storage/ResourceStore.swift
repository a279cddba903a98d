import NIOCore
import HTTPTypes
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
    /// Who writes this version (`author` stays the creator).
    var writtenBy: String
    /// Binary only: the salt and commitment of the content, hashed while it streamed in.
    var contentCommitment: (salt: [UInt8], commitment: [UInt8])? = nil
    /// The version makes a report `final` that was not (a doctor's approval).
    var approval = false
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
    /// The FHIR base, for criteria that name references by absolute URL.
    let base: String

    /// Inserts version `version` of the draft (1 for a create) on a connection inside a transaction.
    func write(
        _ draft: VersionDraft, version: Int, author: String?, key: SymmetricKey, event: RecordsAuditEvent, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> WrittenVersion {
        let now = ResourceStamp.now()
        let stamped = ResourceStamp.stamp(draft.resource, type: draft.type.rawValue, id: draft.id, version: version, lastUpdated: now)
        let body = stamped.serialized()
        let reference = ResourceCipher.versionContext(draft.type, draft.id, version)
        let sealed = try ResourceCipher.seal(body, key: key, context: reference)
        let salt = draft.contentCommitment?.salt ?? LedgerEntry.randomSalt()
        let commitment = try draft.contentCommitment?.commitment ?? LedgerEntry.commitment(salt: salt, canonical: VersionAnchor.canonical(stamped))
        let anchor = try VersionAnchor(versionReference: reference, salt: salt, commitment: commitment, time: FHIRDate.instantText(now), key: key)
        let lastUpdated = Micros.of(now)
        let facts = draft.facts
        let type = draft.type.rawValue
        var stored = StoredVersion(
            type: draft.type, id: draft.id, version: version, lastUpdated: lastUpdated, deleted: false, patient: facts.patient, status: facts.status,
            author: author, keyOwner: draft.keyOwner, sealedBody: sealed, seq: 0)
        stored.seq = try await insertVersion(stored, writtenBy: draft.writtenBy, anchor: anchor, on: connection, logger: logger)
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
        if draft.type == .diagnosticReport { try await SubscriptionMatching.enqueue(reportID: draft.id, base: base, on: connection, logger: logger) }
        var event = event
        event.entity = "\(type)/\(draft.id)/_history/\(version)"
        event.patient = facts.patient.flatMap { draft.type == .practitioner ? nil : $0 }
        event.approval = draft.approval
        try await AuditLog.record(event, on: connection, logger: logger)
        return WrittenVersion(stored: stored, body: body)
    }

    /// Logical delete: a version without a body that keeps the previous version's access
    /// columns, so the same callers learn it is gone (410) and nobody else learns it existed.
    func delete(_ current: StoredVersion, writtenBy: String, event: RecordsAuditEvent, on connection: PostgresConnection, logger: Logger) async throws -> StoredVersion {
        let version = current.version + 1
        let now = ResourceStamp.now()
        let lastUpdated = Micros.of(now)
        let type = current.type.rawValue
        let reference = ResourceCipher.versionContext(current.type, current.id, version)
        guard let key = try await keys.existingKey(for: current.keyOwner, on: connection, logger: logger) else {
            throw Problem(.gone, "\(current.reference) was erased (its data key was destroyed)")
        }
        let salt = LedgerEntry.randomSalt()
        let anchor = try VersionAnchor(
            versionReference: reference, salt: salt, commitment: LedgerEntry.commitment(salt: salt, canonical: VersionAnchor.deletionBytes),
            time: FHIRDate.instantText(now), key: key)
        var deleted = current
        deleted.version = version
        deleted.lastUpdated = lastUpdated
        deleted.deleted = true
        deleted.sealedBody = nil
        deleted.seq = try await insertVersion(deleted, writtenBy: writtenBy, anchor: anchor, on: connection, logger: logger)
        try await connection.query(
            "UPDATE resources SET version = \(version), last_updated = \(lastUpdated), deleted = true WHERE type = \(type) AND id = \(current.id)",
            logger: logger)
        try await connection.query("DELETE FROM search_index WHERE type = \(type) AND id = \(current.id)", logger: logger)
        var event = event
        event.entity = "\(type)/\(current.id)/_history/\(version)"
        event.patient = current.type == .practitioner ? nil : current.patient
        try await AuditLog.record(event, on: connection, logger: logger)
        return deleted
    }

    /// The version row and its ledger outbox row, in one statement.
    private func insertVersion(_ row: StoredVersion, writtenBy: String, anchor: VersionAnchor, on connection: PostgresConnection, logger: Logger)
        async throws -> Int64
    {
        let entry = String(decoding: anchor.entry.canonical, as: UTF8.self)
        return try await connection.query(
            """
            WITH v AS (
                INSERT INTO resource_versions (type, id, version, last_updated, deleted, patient, status, author, key_owner, body,
                    commitment, ref, sealed_salt, written_by)
                VALUES (\(row.type.rawValue), \(row.id), \(row.version), \(row.lastUpdated), \(row.deleted), \(row.patient), \(row.status),
                    \(row.author), \(row.keyOwner), \(row.sealedBody.map { ByteBuffer(bytes: $0) }), \(ByteBuffer(bytes: anchor.entry.commitment)),
                    \(ByteBuffer(bytes: anchor.entry.ref)), \(ByteBuffer(bytes: anchor.sealedSalt)), \(writtenBy))
                RETURNING seq)
            INSERT INTO ledger_outbox (seq, idempotency_key, entry) SELECT seq, \(anchor.idempotencyKey), \(entry) FROM v
            RETURNING seq
            """,
            logger: logger
        ).collect().first!.decode(Int64.self)
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
