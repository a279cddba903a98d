import MedLedgerCore
import PostgresNIO

/// Audit's schema. `audit_events` is the chain: row `seq` holds the stored AuditEvent's RFC 8785
/// text and `hash` = SHA3-256(hash of `seq - 1` ‖ that text), from 32 zero bytes. The search
/// columns are derived from the event at ingest (`AuditEventIndex`); times are µs since 1970
/// like records' and consent's, so paging cursors compare exactly. Every table but the head is
/// append-only: the head is the writer's lock and a cache of the last row, which
/// `/chain/verify` never trusts.
enum AuditMigrations {
    static let all: [Migration] = [
        Migration(
            version: 1,
            name: "the event chain, its search columns, its head and its ledger anchors",
            statements: [
                """
                CREATE TABLE audit_events (
                    seq bigint PRIMARY KEY CHECK (seq > 0),
                    idempotency_key text NOT NULL UNIQUE,
                    event text NOT NULL,
                    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
                    recorded bigint NOT NULL,
                    received_at timestamptz NOT NULL DEFAULT now(),
                    action text,
                    outcome text,
                    types text[] NOT NULL,
                    subtypes text[] NOT NULL,
                    agents text[] NOT NULL,
                    entities text[] NOT NULL)
                """,
                "CREATE INDEX audit_events_by_date ON audit_events (recorded, seq)",
                "CREATE INDEX audit_events_types ON audit_events USING gin (types)",
                "CREATE INDEX audit_events_subtypes ON audit_events USING gin (subtypes)",
                "CREATE INDEX audit_events_agents ON audit_events USING gin (agents)",
                "CREATE INDEX audit_events_entities ON audit_events USING gin (entities)",
                // A patient's events, newest first, without sorting all of them: their audit view
                // (and every `patient` search: the events' patients are kept here only).
                """
                CREATE TABLE audit_patient_events (
                    patient text NOT NULL,
                    recorded bigint NOT NULL,
                    seq bigint NOT NULL REFERENCES audit_events (seq),
                    PRIMARY KEY (patient, recorded, seq))
                """,
                """
                CREATE TABLE audit_chain_head (
                    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
                    seq bigint NOT NULL,
                    hash bytea NOT NULL CHECK (octet_length(hash) = 32))
                """,
                "INSERT INTO audit_chain_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'))",
                // One row per anchored head: the chain size `seq`, its hash, and where the ledger put it.
                """
                CREATE TABLE audit_anchors (
                    seq bigint PRIMARY KEY,
                    head bytea NOT NULL CHECK (octet_length(head) = 32),
                    leaf_index bigint NOT NULL,
                    checkpoint_size bigint NOT NULL,
                    checkpoint text NOT NULL,
                    proof bytea NOT NULL,
                    anchored_at timestamptz NOT NULL DEFAULT now())
                """,
                AppendOnly.function,
                AppendOnly.refuseChanges(on: "audit_events"),
                AppendOnly.refuseTruncate(on: "audit_events"),
                AppendOnly.refuseChanges(on: "audit_patient_events"),
                AppendOnly.refuseTruncate(on: "audit_patient_events"),
                AppendOnly.refuseChanges(on: "audit_anchors"),
                AppendOnly.refuseTruncate(on: "audit_anchors"),
            ]
        )
    ]
}
