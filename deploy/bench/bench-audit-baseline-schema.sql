-- Baseline for deploy/bench/audit, in a scratch database of the bench cluster that holds a copy of
-- audit's schema (pg_dump --schema-only of its database: the same columns, keys, indexes and
-- triggers): the chain's head row, and bench_rows(), the rows one append writes: events as the
-- bench's load client sends them (a practitioner reads a DiagnosticReport of one of `patients`
-- patients), in the stored (RFC 8785) form.
SET client_min_messages = warning;
INSERT INTO audit_chain_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));

-- Rows head+1 … head+n. The patient is Patient/ + md5('bench-patient-N') as a UUID, as loadgen
-- names them; the hash is a SHA-256 of the seq (audit chains SHA3-256 in the service).
CREATE FUNCTION bench_rows(head bigint, n integer, patients integer)
RETURNS TABLE (seq bigint, idempotency_key text, event text, hash bytea, recorded bigint, types text[],
    subtypes text[], agents text[], entities text[], patient text)
LANGUAGE sql AS $$
    SELECT r.seq, 'bench-' || r.seq,
        format('{"action":"R","agent":[{"network":{"address":"10.0.%8$s.%8$s","type":"2"},"requestor":true,'
            '"type":{"coding":[{"code":"humanuser","display":"human user","system":"http://terminology.hl7.org/CodeSystem/extra-security-role-type"}]},'
            '"who":{"identifier":{"system":"urn:medledger:identity:user","value":"%4$s"},"reference":"Practitioner/%3$s"}}],'
            '"entity":[{"role":{"code":"4","display":"Domain Resource","system":"http://terminology.hl7.org/CodeSystem/object-role"},'
            '"type":{"code":"2","display":"System Object","system":"http://terminology.hl7.org/CodeSystem/audit-entity-type"},'
            '"what":{"reference":"DiagnosticReport/%5$s/_history/1"}},'
            '{"role":{"code":"1","display":"Patient","system":"http://terminology.hl7.org/CodeSystem/object-role"},'
            '"type":{"code":"1","display":"Person","system":"http://terminology.hl7.org/CodeSystem/audit-entity-type"},'
            '"what":{"reference":"%6$s"}}],"id":"%1$s","meta":{"lastUpdated":"%2$s"},"outcome":"0","recorded":"%7$s",'
            '"resourceType":"AuditEvent","source":{"observer":{"display":"medledger-records"},"site":"medledger-records",'
            '"type":[{"code":"4","display":"Application Server","system":"http://terminology.hl7.org/CodeSystem/security-source-type"}]},'
            '"subtype":[{"code":"read","display":"read","system":"http://hl7.org/fhir/restful-interaction"}],'
            '"type":{"code":"rest","display":"RESTful Operation","system":"http://terminology.hl7.org/CodeSystem/audit-event-type"}}',
            r.seq, r.stamp, r.practitioner, r.account, r.report, r.patient, r.stamp, r.seq % 64),
        sha256(int8send(r.seq)), r.micros,
        ARRAY['http://terminology.hl7.org/CodeSystem/audit-event-type|rest', 'rest'],
        ARRAY['http://hl7.org/fhir/restful-interaction|read', 'read'],
        ARRAY['Practitioner/' || r.practitioner, 'urn:medledger:identity:user|' || r.account],
        ARRAY['DiagnosticReport/' || r.report, 'DiagnosticReport/' || r.report || '/_history/1', r.patient],
        r.patient
    FROM (SELECT head + i AS seq, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS stamp,
              floor(extract(epoch FROM now()) * 1000)::bigint * 1000 AS micros,
              CAST(md5('practitioner-' || (head + i) % 64) AS uuid) AS practitioner,
              CAST(md5('account-' || (head + i) % 64) AS uuid) AS account, gen_random_uuid() AS report,
              'Patient/' || CAST(md5('bench-patient-' || (1 + floor(random() * patients))::integer) AS uuid) AS patient
          FROM generate_series(1, n) AS i) AS r
$$;
