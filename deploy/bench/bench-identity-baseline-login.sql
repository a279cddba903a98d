-- pgbench script for deploy/bench/identity: the database work of one successful password login
-- as LoginService does it, without the bcrypt verification between the first query and the
-- transaction: the account by username, then in one transaction its failure counter reset
-- (UserStore.recordSuccess), a session and its first refresh token (SessionStore.open) and a
-- login AuditEvent (~1 KB of JSON) in the outbox (AuditOutbox.record).
-- No literal colons: pgbench would read ":name" as a variable (chr(58) is ':').
\set u random(1, 1000)
SELECT id, username, name, role, fhir_user, password_hash, must_change_password, disabled, failed_logins,
    locked_until, created_at, updated_at
FROM users WHERE username = 'user-' || :u;
BEGIN;
UPDATE users SET failed_logins = 0, locked_until = NULL
WHERE username = 'user-' || :u AND NOT disabled AND (locked_until IS NULL OR locked_until <= now())
RETURNING id, username, name, role, fhir_user, password_hash, must_change_password, disabled, failed_logins,
    locked_until, created_at, updated_at;
WITH s AS (
    INSERT INTO sessions (id, user_id, client_address)
    SELECT gen_random_uuid(), id, '127.0.0.1' FROM users WHERE username = 'user-' || :u
    RETURNING id)
INSERT INTO refresh_tokens (token_sha256, session_id, expires_at)
SELECT sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())), id, now() + interval '8 hours' FROM s;
INSERT INTO audit_outbox (idempotency_key, user_id, kind, event)
SELECT 'identity-' || gen_random_uuid(), id, 'login', jsonb_build_object(
    'resourceType', 'AuditEvent',
    'type', jsonb_build_object('system', 'http' || chr(58) || '//dicom.nema.org/resources/ontology/DCM', 'code', '110114', 'display', 'User Authentication'),
    'subtype', jsonb_build_array(jsonb_build_object('system', 'http' || chr(58) || '//dicom.nema.org/resources/ontology/DCM', 'code', '110122', 'display', 'Login')),
    'action', 'E', 'recorded', now(), 'outcome', '0',
    'agent', jsonb_build_array(jsonb_build_object('who', jsonb_build_object('reference', 'Practitioner/user-' || :u, 'display', username),
        'requestor', true, 'network', jsonb_build_object('address', '127.0.0.1', 'type', '2'))),
    'source', jsonb_build_object('site', 'medledger-identity', 'observer', jsonb_build_object('display', 'medledger-identity')),
    'entity', jsonb_build_array(jsonb_build_object('what', jsonb_build_object('reference', 'Patient/' || id),
        'detail', jsonb_build_array(jsonb_build_object('type', 'session', 'valueString', gen_random_uuid()::text)))),
    'text', repeat('x', 400))::text
FROM users WHERE username = 'user-' || :u;
COMMIT;
