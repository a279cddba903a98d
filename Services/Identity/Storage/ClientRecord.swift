import Foundation
import MedLedgerCore
import PostgresNIO

/// A row of `clients`. Its JSON never includes the secret or its hash.
struct ClientRecord: Sendable {
    var id: String
    var name: String
    var role: Role
    var scopes: [String]
    var organization: String?
    var trusted: Bool
    var disabled: Bool
    var secretHash: [UInt8]
    var managedBy: String
    var createdAt: Date
    var updatedAt: Date

    static let columns = "id, name, role, scopes, organization, trusted, disabled, secret_sha256, managed_by, created_at, updated_at"

    typealias Row = (String, String, String, [String], String?, Bool, Bool, ByteBuffer, String, Date, Date)

    init(_ row: Row) {
        (id, name, scopes, organization, trusted, disabled) = (row.0, row.1, row.3, row.4, row.5, row.6)
        role = Role(rawValue: row.2) ?? .system  // the CHECK constraint allows only client roles
        secretHash = Array(buffer: row.7)
        (managedBy, createdAt, updatedAt) = (row.8, row.9, row.10)
    }

    var json: JSONValue {
        .object([
            ("clientId", .string(id)),
            ("name", .string(name)),
            ("role", .string(role.rawValue)),
            ("scopes", .array(scopes.map(JSONValue.string))),
            ("organization", organization.map(JSONValue.string) ?? .null),
            ("trusted", .bool(trusted)),
            ("disabled", .bool(disabled)),
            ("managedBy", .string(managedBy)),
            ("createdAt", .string(Timestamp.rfc3339(createdAt))),
            ("updatedAt", .string(Timestamp.rfc3339(updatedAt))),
        ])
    }

    /// The client's JSON plus its new secret: the only time the secret is shown.
    func json(withSecret secret: String) -> JSONValue {
        guard case .object(var members) = json else { return json }
        members.append(("clientSecret", .string(secret)))
        return .object(members)
    }
}
