import Foundation
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// Login sessions and their refresh tokens. A refresh token works once: using it gives the next
/// one (rotation); using it again means it was stolen or replayed, so the whole session ends.
struct SessionStore: Sendable {
    /// Transactions that write audit events: delivery starts once they commit.
    let outboxes: OutboxTransactions
    let refreshLifetime: Int

    /// A new session for a successful login, with its first refresh token.
    func open(userID: UUID, address: String, on connection: PostgresConnection, logger: Logger) async throws -> (session: UUID, refreshToken: String) {
        let session = UUID()
        try await connection.query(
            "INSERT INTO sessions (id, user_id, client_address) VALUES (\(session), \(userID), \(address))", logger: logger)
        return (session, try await newRefreshToken(session: session, on: connection, logger: logger))
    }

    func newRefreshToken(session: UUID, on connection: PostgresConnection, logger: Logger) async throws -> String {
        let token = SecretToken.generate()
        try await connection.query(
            """
            INSERT INTO refresh_tokens (token_sha256, session_id, expires_at)
            VALUES (\(ByteBuffer(bytes: SecretToken.hash(token))), \(session), now() + make_interval(secs => \(refreshLifetime)))
            """,
            logger: logger
        )
        return token
    }

    enum Rotation: Sendable {
        case rotated(user: UserRecord, session: UUID, refreshToken: String)
        /// A used token came back: the session has been ended.
        case reused
        case invalid
    }

    func rotate(_ refreshToken: String, address: String, logger: Logger) async throws -> Rotation {
        try await outboxes.transaction(logger: logger) { connection -> Rotation in
            let rows = try await connection.query(
                """
                SELECT s.id, rt.used_at IS NOT NULL, rt.expires_at > now() AND s.ended_at IS NULL, s.ended_at IS NULL
                FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
                WHERE rt.token_sha256 = \(ByteBuffer(bytes: SecretToken.hash(refreshToken)))
                FOR UPDATE OF rt, s
                """,
                logger: logger
            )
            var found: (UUID, Bool, Bool, Bool)?
            for try await row in rows.decode((UUID, Bool, Bool, Bool).self) { found = row }
            guard let (session, used, valid, open) = found else { return .invalid }
            guard let user = try await Self.user(ofSession: session, on: connection, logger: logger) else { return .invalid }
            if used {
                if open {
                    _ = try await Self.end(session: session, reason: "refresh-token-reuse", on: connection, logger: logger)
                    var event = IdentityAuditEvent(kind: .refreshTokenReuse, outcome: .seriousFailure, agent: .user(user, address: address))
                    event.detail = "a used refresh token was presented again; the session was ended"
                    event.sessionID = session
                    try await event.row.insert(on: connection, logger: logger)
                }
                return .reused
            }
            guard valid else { return .invalid }
            guard !user.disabled else {
                _ = try await Self.end(session: session, reason: "account-disabled", on: connection, logger: logger)
                return .invalid
            }
            try await connection.query(
                "UPDATE refresh_tokens SET used_at = now() WHERE token_sha256 = \(ByteBuffer(bytes: SecretToken.hash(refreshToken)))",
                logger: logger
            )
            let next = try await newRefreshToken(session: session, on: connection, logger: logger)
            return .rotated(user: user, session: session, refreshToken: next)
        }
    }

    /// Ends a session; false when it had already ended.
    static func end(session: UUID, reason: String, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.query(
            "UPDATE sessions SET ended_at = now(), end_reason = \(reason) WHERE id = \(session) AND ended_at IS NULL RETURNING id",
            logger: logger
        )
        for try await _ in rows.decode(UUID.self) { return true }
        return false
    }

    static func endAll(userID: UUID, reason: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "UPDATE sessions SET ended_at = now(), end_reason = \(reason) WHERE user_id = \(userID) AND ended_at IS NULL", logger: logger)
    }

    /// The account behind a session that is still open; nil when it has ended.
    func openSessionUser(_ session: UUID, logger: Logger) async throws -> UserRecord? {
        let rows = try await outboxes.postgres.query(
            """
            SELECT \(unescaped: UserRecord.columns) FROM users
            WHERE id = (SELECT user_id FROM sessions WHERE id = \(session) AND ended_at IS NULL)
            """,
            logger: logger
        )
        for try await row in rows.decode(UserRecord.Row.self) { return UserRecord(row) }
        return nil
    }

    static func user(ofSession session: UUID, on connection: PostgresConnection, logger: Logger) async throws -> UserRecord? {
        let rows = try await connection.query(
            "SELECT \(unescaped: UserRecord.columns) FROM users WHERE id = (SELECT user_id FROM sessions WHERE id = \(session))", logger: logger)
        for try await row in rows.decode(UserRecord.Row.self) { return UserRecord(row) }
        return nil
    }
}
