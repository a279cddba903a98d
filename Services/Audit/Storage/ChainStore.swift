import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// The chain's SQL: the head lock that makes one writer at a time across every audit process,
/// the idempotency lookup, and the append of a batch in one statement.
enum ChainStore {
    struct Head: Sendable, Equatable {
        var seq: Int64
        var hash: [UInt8]
    }

    /// One event as appended: its place, its stored text and hash, its search columns.
    struct Row: Sendable {
        var seq: Int64
        var key: String
        var text: [UInt8]
        var hash: [UInt8]
        var index: AuditEventIndex
    }

    /// Locks the head row until the transaction ends (`FOR UPDATE`: a second writer waits, then
    /// reads the head the first one left).
    static func lockHead(on connection: PostgresConnection, logger: Logger) async throws -> Head {
        let rows = try await connection.query("SELECT seq, hash FROM audit_chain_head FOR UPDATE", logger: logger)
        for try await (seq, hash) in rows.decode((Int64, ByteBuffer).self) {
            return Head(seq: seq, hash: Array(hash.readableBytesView))
        }
        throw AuditStorageError("the audit_chain_head row is missing")
    }

    /// The seqs of the keys already stored. Runs after `lockHead`, so it sees every committed append.
    static func storedKeys(_ keys: [String], on connection: PostgresConnection, logger: Logger) async throws -> [String: Int64] {
        let rows = try await connection.query("SELECT idempotency_key, seq FROM audit_events WHERE idempotency_key = ANY(\(keys))", logger: logger)
        var stored: [String: Int64] = [:]
        for try await (key, seq) in rows.decode((String, Int64).self) { stored[key] = seq }
        return stored
    }

    /// Appends `rows` (contiguous after the locked head), their patients' index rows, and moves
    /// the head, all in one statement. Search arrays travel as JSON text, one per row: unnest
    /// would flatten a two-dimensional array; absent codes as '' (never a valid FHIR code).
    static func append(_ rows: [Row], on connection: PostgresConnection, logger: Logger) async throws {
        guard let last = rows.last else { return }
        func json(_ values: [String]) -> String { JSONValue.array(values.map(JSONValue.string)).serializedString }
        var patients: (patient: [String], recorded: [Int64], seq: [Int64]) = ([], [], [])
        for row in rows {
            for patient in row.index.patients {
                patients.patient.append(patient)
                patients.recorded.append(row.index.recorded)
                patients.seq.append(row.seq)
            }
        }
        try await connection.query(
            """
            WITH events AS (
                INSERT INTO audit_events (seq, idempotency_key, event, hash, recorded, action, outcome, types, subtypes, agents, entities)
                SELECT seq, key, event, hash, recorded, NULLIF(action, ''), NULLIF(outcome, ''),
                    ARRAY(SELECT jsonb_array_elements_text(types::jsonb)), ARRAY(SELECT jsonb_array_elements_text(subtypes::jsonb)),
                    ARRAY(SELECT jsonb_array_elements_text(agents::jsonb)), ARRAY(SELECT jsonb_array_elements_text(entities::jsonb))
                FROM unnest(\(rows.map(\.seq))::bigint[], \(rows.map(\.key))::text[],
                    \(rows.map { String(decoding: $0.text, as: UTF8.self) })::text[], \(rows.map { ByteBuffer(bytes: $0.hash) })::bytea[],
                    \(rows.map(\.index.recorded))::bigint[],
                    \(rows.map { $0.index.action ?? "" })::text[], \(rows.map { $0.index.outcome ?? "" })::text[],
                    \(rows.map { json($0.index.types) })::text[], \(rows.map { json($0.index.subtypes) })::text[],
                    \(rows.map { json($0.index.agents) })::text[], \(rows.map { json($0.index.entities) })::text[])
                    AS e(seq, key, event, hash, recorded, action, outcome, types, subtypes, agents, entities)
            ), patient_rows AS (
                INSERT INTO audit_patient_events (patient, recorded, seq)
                SELECT * FROM unnest(\(patients.patient)::text[], \(patients.recorded)::bigint[], \(patients.seq)::bigint[])
            )
            UPDATE audit_chain_head SET seq = \(last.seq), hash = \(ByteBuffer(bytes: last.hash))
            """,
            logger: logger
        )
    }
}
