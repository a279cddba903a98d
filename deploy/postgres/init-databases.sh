#!/usr/bin/env bash
# Creates one database per MedLedger service, each owned by its own login role; other roles
# (including the other services') may not connect to it. The postgres image runs this once, when
# its data volume is first initialised (/docker-entrypoint-initdb.d). Re-running it is harmless:
# existing roles and databases are kept and their passwords are not changed.
#
# Passwords come from <SERVICE>_DB_PASSWORD (IDENTITY_DB_PASSWORD, RECORDS_DB_PASSWORD,
# CONSENT_DB_PASSWORD, AUDIT_DB_PASSWORD, LEDGER_DB_PASSWORD); they end up in DATABASE_URLs,
# so use URL-safe characters (e.g. `openssl rand -hex 32`).

# A subshell function, so that nothing leaks into the image's entrypoint if it sources this file.
init_medledger_databases() (
    set -euo pipefail
    local services=(identity records consent audit ledger)
    local service variable missing=()

    for service in "${services[@]}"; do
        variable="${service^^}_DB_PASSWORD"
        [[ -n "${!variable:-}" ]] || missing+=("$variable")
    done
    if ((${#missing[@]})); then
        echo "init-databases: not set: ${missing[*]}" >&2
        return 1
    fi

    for service in "${services[@]}"; do
        variable="${service^^}_DB_PASSWORD"
        # psql variables (:'x' as a literal, :"x" as an identifier) quote the values; nothing is
        # spliced into SQL text.
        psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
            -v name="$service" -v password="${!variable}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"name" TO :"name";
SQL
        echo "init-databases: database $service ready (owner $service)"
    done
)

init_medledger_databases
