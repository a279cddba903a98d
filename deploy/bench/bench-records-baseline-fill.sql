-- psql script for deploy/bench/records: tops the baseline table up to the number of reports the
-- search phase stores (psql -v need=N -v patients=P), spread over P patients, then ANALYZE.
INSERT INTO reports (id, patient, status, code, effective, body)
SELECT CAST(md5(CAST(n AS text)) AS uuid), 'patient-' || (1 + n % :patients), 'preliminary',
    'http://loinc.org|58410-2', now() - (n % 365) * interval '1 day',
    (SELECT string_agg(sha256(int8send(n * 64 + i)), ''::bytea) FROM generate_series(0, 63) AS i)
FROM (SELECT nextval('reports_n') AS n FROM generate_series(1, :need)) AS s;
ANALYZE;
