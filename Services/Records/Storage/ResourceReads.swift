import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// Reads of stored versions, always through the caller's access rule: a version the rule hides
/// is indistinguishable from one that does not exist.
enum ResourceReads {
    /// The current version (possibly a deletion), nil when absent or hidden. `lock` takes the
    /// row lock an update or delete needs.
    static func current(
        _ type: ResourceType, id: String, rule: AccessRule, lock: Bool = false, on connection: PostgresConnection, logger: Logger
    ) async throws -> StoredVersion? {
        if lock {
            // Lock first, read after: a read that waited on the lock inside its own join would
            // still see the version it joined before the winner committed.
            try await connection.query("SELECT 1 FROM resources WHERE type = \(type.rawValue) AND id = \(id) FOR UPDATE", logger: logger)
        }
        var builder = SQLBuilder()
        builder.append(
            """
            SELECT \(StoredVersion.columns) FROM resources r
            JOIN resource_versions v ON v.type = r.type AND v.id = r.id AND v.version = r.version
            WHERE r.type = \(builder.bind(type.rawValue)) AND r.id = \(builder.bind(id))
            """)
        let condition = rule.condition(type: type, alias: "r", &builder)
        builder.append(" AND \(condition)")
        return try await StoredVersion.decode(connection.query(builder.query, logger: logger)).first
    }

    static func version(_ type: ResourceType, id: String, version: Int, rule: AccessRule, on connection: PostgresConnection, logger: Logger)
        async throws -> StoredVersion?
    {
        var builder = SQLBuilder()
        builder.append(
            """
            SELECT \(StoredVersion.columns) FROM resource_versions v
            WHERE v.type = \(builder.bind(type.rawValue)) AND v.id = \(builder.bind(id)) AND v.version = \(builder.bind(version))
            """)
        let condition = rule.condition(type: type, alias: "v", &builder)
        builder.append(" AND \(condition)")
        return try await StoredVersion.decode(connection.query(builder.query, logger: logger)).first
    }

    /// Versions newest first: one resource's (`id`) or a whole type's, from before `beforeSeq`.
    static func history(
        _ type: ResourceType, id: String?, rule: AccessRule, since: Int64?, beforeSeq: Int64?, limit: Int, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [StoredVersion] {
        var builder = SQLBuilder()
        builder.append("SELECT \(StoredVersion.columns) FROM resource_versions v WHERE v.type = \(builder.bind(type.rawValue))")
        if let id { builder.append(" AND v.id = \(builder.bind(id))") }
        if let since { builder.append(" AND v.last_updated >= \(builder.bind(since))") }
        if let beforeSeq { builder.append(" AND v.seq < \(builder.bind(beforeSeq))") }
        let condition = rule.condition(type: type, alias: "v", &builder)
        builder.append(" AND \(condition) ORDER BY v.seq DESC LIMIT \(builder.bind(limit))")
        return try await StoredVersion.decode(connection.query(builder.query, logger: logger))
    }

    /// The patients any version of a resource belonged to, whoever may see it (to narrow grants).
    static func patients(_ type: ResourceType, id: String, on connection: PostgresConnection, logger: Logger) async throws -> Set<String> {
        var patients: Set<String> = []
        let rows = try await connection.query(
            "SELECT DISTINCT patient FROM resource_versions WHERE type = \(type.rawValue) AND id = \(id) AND patient IS NOT NULL", logger: logger)
        for try await patient in rows.decode(String.self) { patients.insert(patient) }
        return patients
    }

    /// Whether a live resource of `type` exists, whoever may see it.
    static func exists(_ type: ResourceType, id: String, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.query(
            "SELECT 1 FROM resources WHERE type = \(type.rawValue) AND id = \(id) AND NOT deleted", logger: logger
        ).collect().count == 1
    }

    /// Whether a live resource is visible under `rule`.
    static func visible(_ type: ResourceType, id: String, rule: AccessRule, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        var builder = SQLBuilder()
        builder.append("SELECT 1 FROM resources r WHERE r.type = \(builder.bind(type.rawValue)) AND r.id = \(builder.bind(id)) AND NOT r.deleted")
        let condition = rule.condition(type: type, alias: "r", &builder)
        builder.append(" AND \(condition)")
        return try await connection.query(builder.query, logger: logger).collect().count == 1
    }
}
