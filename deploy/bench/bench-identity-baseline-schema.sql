-- Baseline for deploy/bench/identity: identity's tables as its migration creates them
-- (Services/Identity/Storage/IdentityMigrations.swift: clients, users, sessions, refresh tokens,
-- audit outbox), in a scratch database of the bench cluster, with 100 clients and 1000 users.
SET client_min_messages = warning;
DROP TABLE IF EXISTS audit_outbox, refresh_tokens, sessions, users, clients;
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
    updated_at timestamptz NOT NULL DEFAULT now());
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
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE sessions (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id),
    client_address text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    end_reason text);
CREATE INDEX sessions_open_by_user ON sessions (user_id) WHERE ended_at IS NULL;
CREATE TABLE refresh_tokens (
    token_sha256 bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE TABLE audit_outbox (
    id bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    user_id uuid,
    kind text NOT NULL,
    event text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz);
CREATE INDEX audit_outbox_by_user ON audit_outbox (user_id, id);
CREATE INDEX audit_outbox_undelivered ON audit_outbox (id) WHERE delivered_at IS NULL;

INSERT INTO clients (id, name, role, scopes, secret_sha256, managed_by)
SELECT 'client-' || n, 'client-' || n, 'service', ARRAY['medledger/ledger.append', 'medledger/audit.write'],
    sha256(int8send(n)), 'config'
FROM generate_series(1, 100) AS n;
-- 60-character stand-ins for bcrypt hashes (never verified here).
INSERT INTO users (id, username, name, role, password_hash)
SELECT gen_random_uuid(), 'user-' || n, 'User ' || n, 'technologist', left(encode(sha512(int8send(n)), 'base64'), 60)
FROM generate_series(1, 1000) AS n;
ANALYZE;
