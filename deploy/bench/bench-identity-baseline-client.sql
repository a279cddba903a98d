-- pgbench script for deploy/bench/identity: the database work of a client_credentials request
-- (ClientStore.find): one client row by primary key. Identity then compares the secret's
-- SHA-256 and signs the token; it writes nothing.
\set c random(1, 100)
SELECT id, name, role, scopes, organization, trusted, disabled, secret_sha256, managed_by, created_at, updated_at
FROM clients WHERE id = 'client-' || :c;
