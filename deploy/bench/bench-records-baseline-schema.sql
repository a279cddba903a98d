-- Baseline for deploy/bench/records, in a scratch database of the bench cluster: a table of
-- stored reports shaped like what records writes per create (one row with a ~2 KB encrypted
-- body and a few indexed search columns) and an audit outbox.
SET client_min_messages = warning;
DROP TABLE IF EXISTS reports, audit_outbox;
DROP SEQUENCE IF EXISTS reports_n;
CREATE SEQUENCE reports_n;
CREATE TABLE reports (
    id uuid PRIMARY KEY,
    patient text NOT NULL,
    status text NOT NULL,
    code text NOT NULL,
    effective timestamptz,
    version_id integer NOT NULL DEFAULT 1,
    last_updated timestamptz NOT NULL DEFAULT now(),
    body bytea NOT NULL);
CREATE INDEX reports_patient ON reports (patient, last_updated DESC, id DESC);
CREATE INDEX reports_code ON reports (code);
CREATE INDEX reports_effective ON reports (effective);
CREATE TABLE audit_outbox (
    id bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    event text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz);
CREATE INDEX audit_outbox_undelivered ON audit_outbox (id) WHERE delivered_at IS NULL;
