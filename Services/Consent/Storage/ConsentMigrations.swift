import MedLedgerCore
import PostgresNIO

/// Consent's schema. Consents are not report contents, so their bodies are stored as plain
/// JSON text (records encrypts reports; a consent says who may read them, not what they say).
/// Times that order and filter consents are µs since 1970 (bigint) like records', so paging
/// cursors compare exactly; break-glass sessions are wall-clock timestamps.
enum ConsentMigrations {
    static let all: [Migration] = [
        Migration(
            version: 1,
            name: "consents, their versions, break-glass sessions, audit outbox",
            statements: [
                // The current version of each consent, with the grant it makes as columns.
                """
                CREATE TABLE consents (
                    id text PRIMARY KEY,
                    version integer NOT NULL,
                    last_updated bigint NOT NULL,
                    deleted boolean NOT NULL,
                    status text NOT NULL,
                    patient text NOT NULL,
                    actor text NOT NULL,
                    grant_scope text NOT NULL CHECK (grant_scope IN ('all', 'category', 'resource')),
                    category text,
                    resource text,
                    period_start bigint,
                    period_end bigint,
                    recorded_by text NOT NULL)
                """,
                // Decisions and grant lists: the actor's active grants, by patient.
                "CREATE INDEX consents_active_actor ON consents (actor, patient) WHERE status = 'active' AND NOT deleted",
                "CREATE INDEX consents_patient_updated ON consents (patient, last_updated DESC, id DESC) WHERE NOT deleted",
                "CREATE INDEX consents_actor_updated ON consents (actor, last_updated DESC, id DESC) WHERE NOT deleted",
                "CREATE INDEX consents_updated ON consents (last_updated DESC, id DESC) WHERE NOT deleted",
                // Every version ever stored (body NULL for a deletion); append-only.
                """
                CREATE TABLE consent_versions (
                    id text NOT NULL,
                    version integer NOT NULL,
                    last_updated bigint NOT NULL,
                    deleted boolean NOT NULL,
                    body text,
                    recorded_by text NOT NULL,
                    PRIMARY KEY (id, version))
                """,
                AppendOnly.function,
                AppendOnly.refuseChanges(on: "consent_versions"),
                AppendOnly.refuseTruncate(on: "consent_versions"),
                """
                CREATE TABLE break_glass (
                    id text PRIMARY KEY,
                    actor text NOT NULL,
                    patient text NOT NULL,
                    reason text NOT NULL,
                    started_at timestamptz NOT NULL,
                    expires_at timestamptz NOT NULL,
                    ended_at timestamptz,
                    ended_by text)
                """,
                "CREATE INDEX break_glass_actor ON break_glass (actor, expires_at)",
                "CREATE INDEX break_glass_patient ON break_glass (patient, started_at DESC)",
                """
                CREATE TABLE audit_outbox (
                    id bigserial PRIMARY KEY,
                    idempotency_key text NOT NULL UNIQUE,
                    event text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    delivered_at timestamptz)
                """,
            ]
        ),
        // Delivered rows are deleted (the audit outbox only holds what audit has not acknowledged).
        Migration(
            version: 2,
            name: "the audit outbox only holds undelivered events",
            statements: ["ALTER TABLE audit_outbox DROP COLUMN delivered_at"]
        ),
    ]
}
