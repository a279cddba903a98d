-- pgbench script for deploy/bench/records: what DiagnosticReport?patient=…&_count=20 needs from
-- the database, without access rules: a random patient's 20 newest reports and their total.
\set p random(1, :patients)
SELECT id, patient, status, code, effective, version_id, last_updated, body
FROM reports WHERE patient = 'patient-' || :p ORDER BY last_updated DESC, id DESC LIMIT 20;
SELECT count(*) FROM reports WHERE patient = 'patient-' || :p;
