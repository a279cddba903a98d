import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// Queries on `users`. Writes that must be audited take the transaction's connection.
struct UserStore: Sendable {
    let postgres: PostgresClient

    func find(id: UUID, logger: Logger) async throws -> UserRecord? {
        try await first(postgres.query("SELECT \(unescaped: UserRecord.columns) FROM users WHERE id = \(id)", logger: logger))
    }

    func find(username: String, logger: Logger) async throws -> UserRecord? {
        try await first(postgres.query("SELECT \(unescaped: UserRecord.columns) FROM users WHERE username = \(username)", logger: logger))
    }

    func list(roles: [String], limit: Int, offset: Int, logger: Logger) async throws -> [UserRecord] {
        let rows = try await postgres.query(
            """
            SELECT \(unescaped: UserRecord.columns) FROM users WHERE role = ANY(\(roles))
            ORDER BY username LIMIT \(limit) OFFSET \(offset)
            """,
            logger: logger
        )
        var users: [UserRecord] = []
        for try await row in rows.decode(UserRecord.Row.self) { users.append(UserRecord(row)) }
        return users
    }

    func anyAdminExists(logger: Logger) async throws -> Bool {
        let rows = try await postgres.query("SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin')", logger: logger)
        for try await exists in rows.decode(Bool.self) { return exists }
        return false
    }

    struct NewUser: Sendable {
        var username: String
        var name: String
        var role: Role
        var fhirUser: String?
        var passwordHash: String
        var mustChangePassword: Bool
    }

    /// Nil when the username is taken.
    static func insert(_ user: NewUser, on connection: PostgresConnection, logger: Logger) async throws -> UserRecord? {
        try await first(
            connection.query(
                """
                INSERT INTO users (id, username, name, role, fhir_user, password_hash, must_change_password)
                VALUES (\(UUID()), \(user.username), \(user.name), \(user.role.rawValue), \(user.fhirUser), \(user.passwordHash), \(user.mustChangePassword))
                ON CONFLICT (username) DO NOTHING
                RETURNING \(unescaped: UserRecord.columns)
                """,
                logger: logger
            )
        )
    }

    struct Changes: Sendable {
        var name: String?
        var role: Role?
        var fhirUser: String??
        var disabled: Bool?
        var passwordHash: String?
        var mustChangePassword: Bool?
        var unlock = false

        /// The changed fields' names, for the audit trail (never their values).
        var names: [String] {
            var names: [String] = []
            if name != nil { names.append("name") }
            if role != nil { names.append("role") }
            if fhirUser != nil { names.append("fhirUser") }
            if disabled != nil { names.append("disabled") }
            if passwordHash != nil { names.append("password") }
            if unlock { names.append("unlock") }
            return names
        }
    }

    static func update(_ id: UUID, _ changes: Changes, on connection: PostgresConnection, logger: Logger) async throws -> UserRecord? {
        let setFHIRUser = changes.fhirUser != nil
        let unlock = changes.unlock || changes.passwordHash != nil
        return try await first(
            connection.query(
                """
                UPDATE users SET
                    name = COALESCE(\(changes.name), name),
                    role = COALESCE(\(changes.role?.rawValue), role),
                    fhir_user = CASE WHEN \(setFHIRUser) THEN \(changes.fhirUser ?? nil) ELSE fhir_user END,
                    disabled = COALESCE(\(changes.disabled), disabled),
                    password_hash = COALESCE(\(changes.passwordHash), password_hash),
                    must_change_password = COALESCE(\(changes.mustChangePassword), must_change_password),
                    failed_logins = CASE WHEN \(unlock) THEN 0 ELSE failed_logins END,
                    locked_until = CASE WHEN \(unlock) THEN NULL ELSE locked_until END,
                    updated_at = now()
                WHERE id = \(id)
                RETURNING \(unescaped: UserRecord.columns)
                """,
                logger: logger
            )
        )
    }

    /// Counts a failed login; at the threshold the account locks and the count starts over.
    /// Returns whether this failure locked it.
    static func recordFailure(_ id: UUID, threshold: Int, lockSeconds: Int, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE users SET
                locked_until = CASE WHEN failed_logins + 1 >= \(threshold) THEN now() + make_interval(secs => \(lockSeconds)) ELSE locked_until END,
                failed_logins = CASE WHEN failed_logins + 1 >= \(threshold) THEN 0 ELSE failed_logins + 1 END
            WHERE id = \(id)
            RETURNING locked_until > now()
            """,
            logger: logger
        )
        for try await locked in rows.decode(Bool?.self) { return locked ?? false }
        return false
    }

    /// A successful login, if the account is still usable at this instant (it may have been
    /// locked or disabled while the password was being checked).
    static func recordSuccess(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws -> UserRecord? {
        try await first(
            connection.query(
                """
                UPDATE users SET failed_logins = 0, locked_until = NULL
                WHERE id = \(id) AND NOT disabled AND (locked_until IS NULL OR locked_until <= now())
                RETURNING \(unescaped: UserRecord.columns)
                """,
                logger: logger
            )
        )
    }

    private static func first(_ rows: PostgresRowSequence) async throws -> UserRecord? {
        for try await row in rows.decode(UserRecord.Row.self) { return UserRecord(row) }
        return nil
    }

    private func first(_ rows: PostgresRowSequence) async throws -> UserRecord? { try await Self.first(rows) }
}
