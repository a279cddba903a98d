-- pgbench script for deploy/bench/records: the database work of one create, as one transaction:
-- a report row for a random one of :patients patients (pgbench -D patients=N) with a 2,048-byte
-- incompressible body (64 SHA-256 values, as ciphertext is) and a ~1 KB AuditEvent outbox row.
-- Row n has id md5(n) as a uuid, so the select scripts can pick existing rows at random.
-- No literal colons: pgbench would read ":name" as a variable (chr(58) is ':').
\set p random(1, :patients)
BEGIN;
INSERT INTO reports (id, patient, status, code, effective, body)
SELECT CAST(md5(CAST(n AS text)) AS uuid), 'patient-' || :p, 'preliminary', 'http' || chr(58) || '//loinc.org|58410-2',
    now() - (n % 365) * interval '1 day',
    (SELECT string_agg(sha256(int8send(n * 64 + i)), ''::bytea) FROM generate_series(0, 63) AS i)
FROM (SELECT nextval('reports_n') AS n) AS s;
INSERT INTO audit_outbox (idempotency_key, event)
SELECT 'records-' || gen_random_uuid(), jsonb_build_object(
    'resourceType', 'AuditEvent',
    'type', jsonb_build_object('system', 'http' || chr(58) || '//terminology.hl7.org/CodeSystem/audit-event-type', 'code', 'rest'),
    'subtype', jsonb_build_array(jsonb_build_object('system', 'http' || chr(58) || '//hl7.org/fhir/restful-interaction', 'code', 'create')),
    'action', 'C', 'recorded', now(), 'outcome', '0',
    'agent', jsonb_build_array(jsonb_build_object('who', jsonb_build_object('reference', 'Practitioner/bench'),
        'requestor', true, 'network', jsonb_build_object('address', '127.0.0.1', 'type', '2'))),
    'source', jsonb_build_object('observer', jsonb_build_object('display', 'medledger-records')),
    'entity', jsonb_build_array(
        jsonb_build_object('what', jsonb_build_object('reference', 'DiagnosticReport/' || gen_random_uuid() || '/_history/1')),
        jsonb_build_object('what', jsonb_build_object('reference', 'Patient/patient-' || :p))),
    'text', repeat('x', 400))::text;
COMMIT;
