-- pgbench script for deploy/bench/audit, run read-only on audit's own database after seeding:
-- what AuditEvent?patient=Patient/x&_count=50 asks of it (AuditSearchStore with KeysetSearch: a
-- patient's 50 newest events, one more to know whether a next page exists, and their count), for
-- a random one of :patients patients (pgbench -D patients=P; named as loadgen names them).
\set n random(1, :patients)
SELECT e.seq, e.recorded, e.event,
    (SELECT count(*) FROM audit_patient_events a WHERE a.patient = 'Patient/' || CAST(md5('bench-patient-' || :n) AS uuid))
FROM audit_patient_events a JOIN audit_events e ON e.seq = a.seq
WHERE a.patient = 'Patient/' || CAST(md5('bench-patient-' || :n) AS uuid)
ORDER BY a.recorded DESC, a.seq DESC LIMIT 51;
