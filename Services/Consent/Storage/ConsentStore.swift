import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// Reads and writes of consents. Every write stores a new version, updates the current row
/// with the grant it makes, and puts its AuditEvent in the outbox, all in the caller's transaction.
enum ConsentStore {
    /// The current version of `id` if `access` lets the caller see it; `lock` takes its row
    /// lock, so that concurrent writes with the same `If-Match` have exactly one winner.
    static func current(_ id: String, access: ConsentAccess, lock: Bool = false, on connection: PostgresConnection, logger: Logger) async throws
        -> StoredConsent?
    {
        var builder = SQLBuilder()
        builder.append("SELECT \(StoredConsent.columns) FROM consents c JOIN consent_versions v ON v.id = c.id AND v.version = c.version ")
        builder.append("WHERE c.id = \(builder.bind(id)) AND \(access.condition(alias: "c", &builder))")
        if lock { builder.append(" FOR UPDATE OF c") }
        return try await first(builder, on: connection, logger: logger)
    }

    /// Version `version` of `id`, if the caller may see the consent.
    static func version(_ id: String, _ version: Int, access: ConsentAccess, on connection: PostgresConnection, logger: Logger) async throws
        -> StoredConsent?
    {
        var builder = SQLBuilder()
        builder.append("SELECT \(StoredConsent.columns) FROM consent_versions v JOIN consents c ON c.id = v.id ")
        builder.append("WHERE v.id = \(builder.bind(id)) AND v.version = \(builder.bind(version)) AND \(access.condition(alias: "c", &builder))")
        return try await first(builder, on: connection, logger: logger)
    }

    /// Versions of a consent the caller may see, newest first: those before version `before`
    /// (a history page's cursor) and updated at or after `since`, at most `limit`.
    static func history(
        _ id: String, access: ConsentAccess, since: Int64?, before: Int?, limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> [StoredConsent] {
        var builder = SQLBuilder()
        builder.append("SELECT \(StoredConsent.columns) FROM consent_versions v JOIN consents c ON c.id = v.id ")
        builder.append("WHERE v.id = \(builder.bind(id)) AND \(access.condition(alias: "c", &builder))")
        if let since { builder.append(" AND v.last_updated >= \(builder.bind(since))") }
        if let before { builder.append(" AND v.version < \(builder.bind(before))") }
        builder.append(" ORDER BY v.version DESC LIMIT \(builder.bind(limit))")
        var versions: [StoredConsent] = []
        for try await row in try await connection.query(builder.query, logger: logger) { versions.append(try StoredConsent(row: row)) }
        return versions
    }

    /// Stores `body` (already stamped) as version `version` of `id`, granting `grant`.
    static func write(
        _ grant: Grant, body: String, id: String, version: Int, lastUpdated: Int64, recordedBy: String, event: ConsentAuditEvent,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> StoredConsent {
        try await connection.query(
            """
            INSERT INTO consent_versions (id, version, last_updated, deleted, body, recorded_by)
            VALUES (\(id), \(version), \(lastUpdated), FALSE, \(body), \(recordedBy))
            """,
            logger: logger)
        try await connection.query(
            """
            INSERT INTO consents (id, version, last_updated, deleted, status, patient, actor, grant_scope, category, resource, period_start, period_end,
                recorded_by)
            VALUES (\(id), \(version), \(lastUpdated), FALSE, \(grant.status), \(grant.patient), \(grant.actor), \(grant.scope.rawValue),
                \(grant.category), \(grant.resource), \(grant.periodStart), \(grant.periodEnd), \(recordedBy))
            ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, last_updated = EXCLUDED.last_updated, deleted = FALSE,
                status = EXCLUDED.status, patient = EXCLUDED.patient, actor = EXCLUDED.actor, grant_scope = EXCLUDED.grant_scope,
                category = EXCLUDED.category, resource = EXCLUDED.resource, period_start = EXCLUDED.period_start,
                period_end = EXCLUDED.period_end, recorded_by = EXCLUDED.recorded_by
            """,
            logger: logger)
        try await event.row.insert(on: connection, logger: logger)
        return StoredConsent(
            id: id, version: version, lastUpdated: lastUpdated, deleted: false, body: body, patient: grant.patient, actor: grant.actor)
    }

    /// A logical delete: a new version marked deleted; the consent leaves searches and grants.
    static func delete(
        _ current: StoredConsent, lastUpdated: Int64, recordedBy: String, event: ConsentAuditEvent, on connection: PostgresConnection, logger: Logger
    )
        async throws -> StoredConsent
    {
        let version = current.version + 1
        try await connection.query(
            """
            INSERT INTO consent_versions (id, version, last_updated, deleted, body, recorded_by)
            VALUES (\(current.id), \(version), \(lastUpdated), TRUE, NULL, \(recordedBy))
            """,
            logger: logger)
        try await connection.query(
            """
            UPDATE consents SET version = \(version), last_updated = \(lastUpdated), deleted = TRUE, recorded_by = \(recordedBy)
            WHERE id = \(current.id)
            """,
            logger: logger)
        try await event.row.insert(on: connection, logger: logger)
        var deleted = current
        (deleted.version, deleted.lastUpdated, deleted.deleted, deleted.body) = (version, lastUpdated, true, nil)
        return deleted
    }

    private static func first(_ builder: SQLBuilder, on connection: PostgresConnection, logger: Logger) async throws -> StoredConsent? {
        var found: StoredConsent?
        for try await row in try await connection.query(builder.query, logger: logger) { found = try StoredConsent(row: row) }
        return found
    }
}
