import Foundation
import MedLedgerCore
import PostgresNIO

/// A row of `users`. Its JSON never includes the password hash.
struct UserRecord: Sendable {
    var id: UUID
    var username: String
    var name: String
    var role: Role
    var fhirUser: String?
    var passwordHash: String
    var mustChangePassword: Bool
    var disabled: Bool
    var failedLogins: Int
    var lockedUntil: Date?
    var createdAt: Date
    var updatedAt: Date

    static let columns = """
        id, username, name, role, fhir_user, password_hash, must_change_password, disabled, failed_logins, locked_until, created_at, updated_at
        """

    typealias Row = (UUID, String, String, String, String?, String, Bool, Bool, Int, Date?, Date, Date)

    init(_ row: Row) {
        (id, username, name) = (row.0, row.1, row.2)
        role = Role(rawValue: row.3) ?? .patient  // the CHECK constraint allows only user roles
        (fhirUser, passwordHash, mustChangePassword, disabled, failedLogins) = (row.4, row.5, row.6, row.7, row.8)
        (lockedUntil, createdAt, updatedAt) = (row.9, row.10, row.11)
    }

    var isLocked: Bool { lockedUntil.map { $0 > Date() } ?? false }

    /// `Patient/x` for a patient's account: the patient its audit events concern.
    var patient: String? { role == .patient ? fhirUser : nil }

    /// An account that must replace its one-time password may do nothing else.
    var allowedScopes: [String] { mustChangePassword ? [Scope.changePassword] : role.userScopes }

    var json: JSONValue {
        .object([
            ("id", .string(id.uuidString.lowercased())),
            ("username", .string(username)),
            ("name", .string(name)),
            ("role", .string(role.rawValue)),
            ("fhirUser", fhirUser.map(JSONValue.string) ?? .null),
            ("disabled", .bool(disabled)),
            ("mustChangePassword", .bool(mustChangePassword)),
            ("lockedUntil", isLocked ? .string(Timestamp.rfc3339(lockedUntil!)) : .null),
            ("createdAt", .string(Timestamp.rfc3339(createdAt))),
            ("updatedAt", .string(Timestamp.rfc3339(updatedAt))),
        ])
    }
}
