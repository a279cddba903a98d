-- Baseline for deploy/bench/ledger: a table shaped like the ledger's `leaves` table
-- (Services/Ledger/Storage/LedgerMigrations.swift), in a scratch database of the bench cluster.
SET client_min_messages = warning;
DROP TABLE IF EXISTS leaves;
DROP SEQUENCE IF EXISTS leaves_idx;
CREATE TABLE leaves (
    idx bigint PRIMARY KEY CHECK (idx >= 0),
    idempotency_key text NOT NULL UNIQUE,
    data bytea NOT NULL,
    leaf_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX leaves_leaf_hash ON leaves (leaf_hash);
CREATE SEQUENCE leaves_idx MINVALUE 0 START 0;
