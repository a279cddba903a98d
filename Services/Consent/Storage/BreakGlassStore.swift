import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// Break-glass sessions. Each start and each early end writes its AuditEvent in the same transaction.
enum BreakGlassStore {
    static let columns = "id, actor, patient, reason, started_at, expires_at, ended_at"

    static func start(_ session: BreakGlassSession, event: ConsentAuditEvent, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO break_glass (id, actor, patient, reason, started_at, expires_at)
            VALUES (\(session.id), \(session.actor), \(session.patient), \(session.reason), \(session.started), \(session.expires))
            """,
            logger: logger)
        try await event.row.insert(on: connection, logger: logger)
    }

    /// The session `id` if `filter` lets the caller see it; `lock` takes its row lock.
    static func session(_ id: String, filter: Filter, lock: Bool = false, on connection: PostgresConnection, logger: Logger) async throws
        -> BreakGlassSession?
    {
        var builder = SQLBuilder()
        builder.append("SELECT \(columns) FROM break_glass WHERE id = \(builder.bind(id)) AND \(filter.condition(&builder))")
        if lock { builder.append(" FOR UPDATE") }
        return try await decode(builder, on: connection, logger: logger).first
    }

    /// Sessions newest first, at most `limit`.
    static func list(_ filter: Filter, limit: Int, on connection: PostgresConnection, logger: Logger) async throws -> [BreakGlassSession] {
        var builder = SQLBuilder()
        builder.append("SELECT \(columns) FROM break_glass WHERE \(filter.condition(&builder))")
        builder.append(" ORDER BY started_at DESC, id DESC LIMIT \(builder.bind(limit))")
        return try await decode(builder, on: connection, logger: logger)
    }

    static func end(
        _ session: BreakGlassSession, at now: Date, by endedBy: String, event: ConsentAuditEvent, on connection: PostgresConnection, logger: Logger
    )
        async throws -> BreakGlassSession
    {
        try await connection.query("UPDATE break_glass SET ended_at = \(now), ended_by = \(endedBy) WHERE id = \(session.id)", logger: logger)
        try await event.row.insert(on: connection, logger: logger)
        var ended = session
        ended.ended = now
        return ended
    }

    /// Which sessions a query covers: by actor, by patient, or both (nil: any).
    struct Filter: Sendable {
        var actor: String?
        var patient: String?

        func condition(_ builder: inout SQLBuilder) -> String {
            var parts = ["TRUE"]
            if let actor { parts.append("actor = \(builder.bind(actor))") }
            if let patient { parts.append("patient = \(builder.bind(patient))") }
            return parts.joined(separator: " AND ")
        }
    }

    private static func decode(_ builder: SQLBuilder, on connection: PostgresConnection, logger: Logger) async throws -> [BreakGlassSession] {
        var sessions: [BreakGlassSession] = []
        for try await c in try await connection.query(builder.query, logger: logger).decode(
            (String, String, String, String, Date, Date, Date?).self)
        {
            sessions.append(BreakGlassSession(id: c.0, actor: c.1, patient: c.2, reason: c.3, started: c.4, expires: c.5, ended: c.6))
        }
        return sessions
    }
}
