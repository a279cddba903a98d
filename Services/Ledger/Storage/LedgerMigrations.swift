import MedLedgerCore
import NIOCore
import PostgresNIO

/// The ledger's schema. Leaves and checkpoints are append-only: triggers refuse UPDATE and
/// DELETE, so even a bug or a careless operator cannot rewrite the log in place.
enum LedgerMigrations {
    static let all: [Migration] = [
        Migration(
            version: 1,
            name: "log tables",
            statements: [
                """
                CREATE TABLE leaves (
                    idx bigint PRIMARY KEY CHECK (idx >= 0),
                    idempotency_key text NOT NULL UNIQUE,
                    data bytea NOT NULL,
                    leaf_hash bytea NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now())
                """,
                "CREATE INDEX leaves_leaf_hash ON leaves (leaf_hash)",
                """
                CREATE TABLE tiles (
                    level integer NOT NULL CHECK (level BETWEEN 0 AND 63),
                    idx bigint NOT NULL CHECK (idx >= 0),
                    hashes bytea NOT NULL,
                    PRIMARY KEY (level, idx))
                """,
                """
                CREATE TABLE tree_state (
                    id integer PRIMARY KEY CHECK (id = 1),
                    size bigint NOT NULL CHECK (size >= 0),
                    root bytea NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT now())
                """,
                "INSERT INTO tree_state (id, size, root) VALUES (1, 0, \(ByteBuffer(bytes: MerkleTree.emptyRoot)))",
                """
                CREATE TABLE checkpoints (
                    size bigint PRIMARY KEY CHECK (size >= 0),
                    root bytea NOT NULL,
                    note text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now())
                """,
                """
                CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION 'the ledger is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME;
                END $$
                """,
                "CREATE TRIGGER leaves_append_only BEFORE UPDATE OR DELETE ON leaves FOR EACH ROW EXECUTE FUNCTION ledger_append_only()",
                "CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints FOR EACH ROW EXECUTE FUNCTION ledger_append_only()",
            ]
        )
    ]
}
