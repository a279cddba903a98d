-- pgbench script for deploy/bench/records: a point select of one stored report by primary key
-- (pgbench -D rows=N: rows 1..N exist, see the insert script).
\set n random(1, :rows)
SELECT id, patient, status, code, effective, version_id, last_updated, body
FROM reports WHERE id = CAST(md5(CAST(:n AS text)) AS uuid);
