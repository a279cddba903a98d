import MedLedgerCore
import PostgresNIO

/// Records' schema. Bodies and Binary content are only ever stored sealed (AES-256-GCM under a
/// per-patient data key); the plaintext columns are the ones search and access control need.
/// Times used for ordering and search are microseconds since 1970 (bigint), so that paging
/// cursors compare exactly; ±infinity are the bigint extremes.
enum RecordsMigrations {
    static let all: [Migration] = [
        Migration(
            version: 1,
            name: "resources, versions, search index, data keys, binary chunks, conditional creates, audit outbox",
            statements: [
                """
                CREATE TABLE data_keys (
                    owner text PRIMARY KEY,
                    kek_id text NOT NULL,
                    wrapped bytea NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now())
                """,
                // Every version ever stored; append-only (the trigger below refuses changes).
                """
                CREATE TABLE resource_versions (
                    seq bigserial UNIQUE,
                    type text NOT NULL,
                    id text NOT NULL,
                    version integer NOT NULL,
                    last_updated bigint NOT NULL,
                    deleted boolean NOT NULL,
                    patient text,
                    status text,
                    author text,
                    key_owner text NOT NULL,
                    body bytea,
                    PRIMARY KEY (type, id, version))
                """,
                "CREATE INDEX resource_versions_type_seq ON resource_versions (type, seq)",
                AppendOnly.function,
                AppendOnly.refuseChanges(on: "resource_versions"),
                AppendOnly.refuseTruncate(on: "resource_versions"),
                // The current version of each resource, with the columns access control and sorting use.
                """
                CREATE TABLE resources (
                    type text NOT NULL,
                    id text NOT NULL,
                    version integer NOT NULL,
                    last_updated bigint NOT NULL,
                    deleted boolean NOT NULL,
                    patient text,
                    status text,
                    author text,
                    sort_date bigint NOT NULL,
                    sort_issued bigint NOT NULL,
                    PRIMARY KEY (type, id))
                """,
                "CREATE INDEX resources_updated ON resources (type, last_updated DESC, id DESC) WHERE NOT deleted",
                "CREATE INDEX resources_patient_updated ON resources (type, patient, last_updated DESC, id DESC) WHERE NOT deleted",
                "CREATE INDEX resources_patient_date ON resources (type, patient, sort_date DESC, id DESC) WHERE NOT deleted",
                "CREATE INDEX resources_author ON resources (type, author) WHERE NOT deleted",
                // Search values of current versions: one row per value (tokens, references, strings, date ranges).
                """
                CREATE TABLE search_index (
                    type text NOT NULL,
                    id text NOT NULL,
                    param text NOT NULL,
                    system text,
                    code text,
                    ref text,
                    norm text,
                    raw text,
                    low bigint,
                    high bigint)
                """,
                "CREATE INDEX search_index_resource ON search_index (type, id)",
                "CREATE INDEX search_index_token ON search_index (type, param, code, system) WHERE code IS NOT NULL",
                "CREATE INDEX search_index_system ON search_index (type, param, system) WHERE system IS NOT NULL",
                "CREATE INDEX search_index_ref ON search_index (type, param, ref) WHERE ref IS NOT NULL",
                "CREATE INDEX search_index_string ON search_index (type, param, norm text_pattern_ops) WHERE norm IS NOT NULL",
                "CREATE INDEX search_index_date ON search_index (type, param, low, high) WHERE low IS NOT NULL",
                // Binary content, sealed chunk by chunk; append-only like the versions it belongs to.
                """
                CREATE TABLE binary_contents (
                    id text NOT NULL,
                    version integer NOT NULL,
                    nonce_prefix bytea NOT NULL,
                    content_type text NOT NULL,
                    chunks integer NOT NULL,
                    size bigint NOT NULL,
                    sealed_sha1 bytea NOT NULL,
                    PRIMARY KEY (id, version))
                """,
                """
                CREATE TABLE binary_chunks (
                    id text NOT NULL,
                    version integer NOT NULL,
                    chunk integer NOT NULL,
                    data bytea NOT NULL,
                    PRIMARY KEY (id, version, chunk))
                """,
                AppendOnly.refuseChanges(on: "binary_contents"),
                AppendOnly.refuseChanges(on: "binary_chunks"),
                // One row per distinct `If-None-Exist` query: concurrent conditional creates with the
                // same query serialise on its row lock, so they cannot both create.
                """
                CREATE TABLE conditional_creates (
                    type text NOT NULL,
                    query text NOT NULL,
                    PRIMARY KEY (type, query))
                """,
                """
                CREATE TABLE audit_outbox (
                    id bigserial PRIMARY KEY,
                    idempotency_key text NOT NULL UNIQUE,
                    event text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    delivered_at timestamptz)
                """,
            ]
        ),
        Migration(
            version: 2,
            name: "version commitments and the ledger outbox",
            statements: [
                // Set once, on insert, like the rest of a version: its commitment, the blinded ref
                // its ledger entry carries, its salt (sealed under the version's data key) and who
                // wrote it (`author` stays the creator, whom the access rules follow).
                """
                ALTER TABLE resource_versions ADD COLUMN commitment bytea, ADD COLUMN ref bytea, ADD COLUMN sealed_salt bytea,
                    ADD COLUMN written_by text
                """,
                "CREATE INDEX resource_versions_ref ON resource_versions (ref)",
                // One row per version: the ledger entry as sent, then its anchor once a signed
                // checkpoint covers it (leaf index, and the inclusion proof up to that checkpoint).
                """
                CREATE TABLE ledger_outbox (
                    seq bigint PRIMARY KEY REFERENCES resource_versions (seq),
                    idempotency_key text NOT NULL UNIQUE,
                    entry text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    leaf_index bigint,
                    checkpoint_size bigint,
                    proof bytea,
                    anchored_at timestamptz)
                """,
                "CREATE INDEX ledger_outbox_pending ON ledger_outbox (seq) WHERE anchored_at IS NULL",
                "CREATE INDEX ledger_outbox_leaf ON ledger_outbox (leaf_index)",
                // The signed checkpoints the anchors point at, so `$verify` answers while the ledger is down.
                "CREATE TABLE ledger_checkpoints (size bigint PRIMARY KEY, note text NOT NULL)",
            ]
        ),
        // Delivered rows are deleted (the audit outbox only holds what audit has not acknowledged).
        Migration(
            version: 3,
            name: "the audit outbox only holds undelivered events",
            statements: ["ALTER TABLE audit_outbox DROP COLUMN delivered_at"]
        ),
        Migration(
            version: 4,
            name: "subscriptions and their notification outbox",
            statements: [
                // The owner is kept as their token said (role, fhirUser, scopes): delivery checks
                // what they may read when each notification goes out. The resource itself is
                // sealed: its channel headers are the subscriber's secrets.
                """
                CREATE TABLE subscriptions (
                    id text PRIMARY KEY,
                    version integer NOT NULL,
                    last_updated bigint NOT NULL,
                    deleted boolean NOT NULL DEFAULT false,
                    owner_subject text NOT NULL,
                    owner_role text NOT NULL,
                    owner_fhir_user text,
                    owner_scope text NOT NULL,
                    owner_trusted boolean NOT NULL,
                    status text NOT NULL,
                    error text,
                    criteria text NOT NULL,
                    channel_type text NOT NULL,
                    ends_at bigint,
                    body bytea NOT NULL,
                    events_since_start bigint NOT NULL DEFAULT 0,
                    failures integer NOT NULL DEFAULT 0,
                    retry_at bigint NOT NULL DEFAULT 0,
                    lease_until bigint NOT NULL DEFAULT 0)
                """,
                "CREATE INDEX subscriptions_owner ON subscriptions (owner_subject, last_updated DESC) WHERE NOT deleted",
                "CREATE INDEX subscriptions_live ON subscriptions (status) WHERE NOT deleted",
                // One row per (subscription, report version) that matched its criteria when written,
                // in that write's transaction; delivery fills in the rest.
                """
                CREATE TABLE subscription_events (
                    seq bigserial PRIMARY KEY,
                    subscription text NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
                    resource_id text NOT NULL,
                    version integer NOT NULL,
                    written_at bigint NOT NULL,
                    state text NOT NULL DEFAULT 'pending',
                    event_number bigint,
                    attempts integer NOT NULL DEFAULT 0,
                    error text,
                    done_at bigint)
                """,
                "CREATE INDEX subscription_events_pending ON subscription_events (subscription, seq) WHERE state = 'pending'",
                "CREATE INDEX subscription_events_recent ON subscription_events (subscription, seq DESC)",
            ]
        ),
    ]
}
