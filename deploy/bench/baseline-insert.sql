-- pgbench script for deploy/bench/ledger: one multi-row INSERT of :rows ledger-shaped rows per
-- transaction (pgbench -D rows=N). Keys are unique across clients and transactions (sequence);
-- data is a ~155-byte JSON entry like the ledger's ({"commitment","ref","time","v"} with two
-- base64 SHA-256 values), leaf_hash = SHA-256(0x00 || data) as in RFC 6962.
-- chr(58) is ':' (a literal colon followed by a name would be read as a pgbench variable).
INSERT INTO leaves (idx, idempotency_key, data, leaf_hash)
SELECT n, 'pgbench-' || :client_id || '-' || n || '-' || left(md5(n::text), 16), d, sha256('\x00'::bytea || d)
FROM (
    SELECT n, convert_to(
            '{"commitment"' || chr(58) || '"' || encode(sha256(int8send(n)), 'base64')
            || '","ref"' || chr(58) || '"' || encode(sha256(uuid_send(gen_random_uuid())), 'base64')
            || '","time"' || chr(58) || '"'
            || replace(to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24xMIxSS.MS"Z"'), 'x', chr(58))
            || '","v"' || chr(58) || '1}', 'UTF8') AS d
    FROM (SELECT nextval('leaves_idx') AS n FROM generate_series(1, :rows)) AS s
) AS t;
