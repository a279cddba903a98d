-- pgbench script for deploy/bench/audit: the database work of one chain append of :rows events
-- (pgbench -D rows=N -D patients=P), as audit's ChainWriter does it in one transaction: lock the
-- head, look the batch's idempotency keys up, insert the events and their patient index rows
-- and move the head (one statement), commit. Clients queue on the head lock, as audit's writers do.
BEGIN;
SELECT seq AS head FROM audit_chain_head FOR UPDATE \gset
SELECT idempotency_key, seq FROM audit_events
WHERE idempotency_key = ANY (ARRAY(SELECT 'bench-' || (:head + i) FROM generate_series(1, :rows) AS i));
WITH new AS (SELECT * FROM bench_rows(:head, :rows, :patients)),
events AS (
    INSERT INTO audit_events (seq, idempotency_key, event, hash, recorded, action, outcome, types, subtypes, agents, entities)
    SELECT seq, idempotency_key, event, hash, recorded, 'R', '0', types, subtypes, agents, entities FROM new
), patient_rows AS (
    INSERT INTO audit_patient_events (patient, recorded, seq) SELECT patient, recorded, seq FROM new
)
UPDATE audit_chain_head SET seq = :head + :rows, hash = sha256(int8send(:head + :rows));
COMMIT;
