import MedLedgerCore
import PostgresNIO

/// Identity's schema. Secrets are stored only as hashes (passwords: bcrypt; client secrets and
/// refresh tokens: SHA-256 of 256-bit random values) or sealed (signing keys).
enum IdentityMigrations {
    static let all: [Migration] = [
        Migration(
            version: 1,
            name: "accounts, clients, sessions, keys, audit outbox",
            statements: [
                """
                CREATE TABLE users (
                    id uuid PRIMARY KEY,
                    username text NOT NULL UNIQUE,
                    name text NOT NULL,
                    role text NOT NULL CHECK (role IN ('admin', 'receptionist', 'technologist', 'doctor', 'patient')),
                    fhir_user text,
                    password_hash text NOT NULL,
                    must_change_password boolean NOT NULL DEFAULT false,
                    disabled boolean NOT NULL DEFAULT false,
                    failed_logins integer NOT NULL DEFAULT 0,
                    locked_until timestamptz,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now())
                """,
                """
                CREATE TABLE clients (
                    id text PRIMARY KEY,
                    name text NOT NULL,
                    role text NOT NULL CHECK (role IN ('service', 'system')),
                    scopes text[] NOT NULL,
                    organization text,
                    trusted boolean NOT NULL DEFAULT false,
                    disabled boolean NOT NULL DEFAULT false,
                    secret_sha256 bytea NOT NULL,
                    managed_by text NOT NULL CHECK (managed_by IN ('config', 'api')),
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now())
                """,
                """
                CREATE TABLE sessions (
                    id uuid PRIMARY KEY,
                    user_id uuid NOT NULL REFERENCES users (id),
                    client_address text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    ended_at timestamptz,
                    end_reason text)
                """,
                "CREATE INDEX sessions_open_by_user ON sessions (user_id) WHERE ended_at IS NULL",
                """
                CREATE TABLE refresh_tokens (
                    token_sha256 bytea PRIMARY KEY,
                    session_id uuid NOT NULL REFERENCES sessions (id),
                    expires_at timestamptz NOT NULL,
                    used_at timestamptz,
                    created_at timestamptz NOT NULL DEFAULT now())
                """,
                "CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id)",
                """
                CREATE TABLE signing_keys (
                    kid text PRIMARY KEY,
                    sealed_private_key bytea NOT NULL,
                    public_key bytea NOT NULL,
                    status text NOT NULL CHECK (status IN ('active', 'previous', 'retired')),
                    created_at timestamptz NOT NULL DEFAULT now(),
                    retired_at timestamptz)
                """,
                "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status IN ('active', 'previous')",
                // Rows stay after delivery (delivered_at): the login history reads them, so moving
                // that history to the audit service loses nothing.
                """
                CREATE TABLE audit_outbox (
                    id bigserial PRIMARY KEY,
                    idempotency_key text NOT NULL UNIQUE,
                    user_id uuid,
                    kind text NOT NULL,
                    event text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    delivered_at timestamptz)
                """,
                "CREATE INDEX audit_outbox_by_user ON audit_outbox (user_id, id)",
                "CREATE INDEX audit_outbox_undelivered ON audit_outbox (id) WHERE delivered_at IS NULL",
            ]
        ),
        // The audit service holds the login history now: delivered rows are deleted (the audit
        // outbox only holds what audit has not acknowledged), so the history's index columns
        // and the delivery mark go. Nothing ever set delivered_at: every row collected so far
        // is still to be delivered, and the worker sends them all.
        Migration(
            version: 2,
            name: "the audit outbox only holds undelivered events",
            statements: ["ALTER TABLE audit_outbox DROP COLUMN user_id, DROP COLUMN kind, DROP COLUMN delivered_at"]
        ),
    ]
}
