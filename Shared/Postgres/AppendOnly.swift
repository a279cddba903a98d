package import PostgresNIO

/// Migration statements that make a table append-only: a trigger refuses UPDATE and DELETE of
/// its rows (and, where asked, TRUNCATE), so stored versions cannot be rewritten through SQL
/// without disabling triggers first. Records' and consent's version tables use them.
package enum AppendOnly {
    /// The trigger function, once per database (before the triggers).
    package static let function: PostgresQuery = """
        CREATE FUNCTION refuse_version_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'stored versions are append-only (% on %)', TG_OP, TG_TABLE_NAME;
        END $$
        """

    /// `table` is a literal of the calling migration, never input.
    package static func refuseChanges(on table: StaticString) -> PostgresQuery {
        PostgresQuery(
            unsafeSQL: "CREATE TRIGGER \(table)_append_only BEFORE UPDATE OR DELETE ON \(table) FOR EACH ROW EXECUTE FUNCTION refuse_version_change()")
    }

    package static func refuseTruncate(on table: StaticString) -> PostgresQuery {
        PostgresQuery(
            unsafeSQL: "CREATE TRIGGER \(table)_no_truncate BEFORE TRUNCATE ON \(table) FOR EACH STATEMENT EXECUTE FUNCTION refuse_version_change()")
    }
}
