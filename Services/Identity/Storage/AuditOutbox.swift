import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// Audit events for the audit service, written in the same transaction as the change they
/// describe. Delivery (`{"idempotencyKey", "event"}` to `POST /events`) starts once audit exists.
enum AuditOutbox {
    static func record(_ event: IdentityAuditEvent, on connection: PostgresConnection, logger: Logger) async throws {
        let key = "identity-" + UUID().uuidString.lowercased()
        let json = String(decoding: AuditEventBuilder.resource(event, recorded: Date()).serialized(), as: UTF8.self)
        try await connection.query(
            """
            INSERT INTO audit_outbox (idempotency_key, user_id, kind, event)
            VALUES (\(key), \(event.subjectUserID), \(event.kind.rawValue), \(json))
            """,
            logger: logger
        )
    }

    static func record(_ event: IdentityAuditEvent, postgres: PostgresClient, logger: Logger) async throws {
        try await postgres.withConnection { connection in try await record(event, on: connection, logger: logger) }
    }

    /// An account's login history, newest first: (idempotency key, AuditEvent JSON).
    static func loginHistory(userID: UUID, limit: Int, postgres: PostgresClient, logger: Logger) async throws -> (total: Int, events: [(String, String)]) {
        let kinds = IdentityAuditEvent.Kind.loginHistory.map(\.rawValue)
        var total = 0
        for try await count in try await postgres.query(
            "SELECT count(*) FROM audit_outbox WHERE user_id = \(userID) AND kind = ANY(\(kinds))", logger: logger
        ).decode(Int.self) {
            total = count
        }
        var events: [(String, String)] = []
        let rows = try await postgres.query(
            """
            SELECT idempotency_key, event FROM audit_outbox WHERE user_id = \(userID) AND kind = ANY(\(kinds))
            ORDER BY id DESC LIMIT \(limit)
            """,
            logger: logger
        )
        for try await row in rows.decode((String, String).self) { events.append(row) }
        return (total, events)
    }
}
