import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// Queries on `clients`.
struct ClientStore: Sendable {
    let postgres: PostgresClient

    func find(id: String, logger: Logger) async throws -> ClientRecord? {
        try await Self.first(postgres.query("SELECT \(unescaped: ClientRecord.columns) FROM clients WHERE id = \(id)", logger: logger))
    }

    func list(logger: Logger) async throws -> [ClientRecord] {
        let rows = try await postgres.query("SELECT \(unescaped: ClientRecord.columns) FROM clients ORDER BY id", logger: logger)
        var clients: [ClientRecord] = []
        for try await row in rows.decode(ClientRecord.Row.self) { clients.append(ClientRecord(row)) }
        return clients
    }

    /// The client, when the secret is its current one (and nil in every other case alike).
    func authenticate(id: String, secret: String, logger: Logger) async throws -> ClientRecord? {
        guard let client = try await find(id: id, logger: logger), SecretToken.matches(secret, hash: client.secretHash) else { return nil }
        return client
    }

    struct NewClient: Sendable {
        var id: String
        var name: String
        var role: Role
        var scopes: [String]
        var organization: String?
        var trusted: Bool
    }

    /// Nil when the id is taken.
    static func insert(_ client: NewClient, secretHash: [UInt8], on connection: PostgresConnection, logger: Logger) async throws -> ClientRecord? {
        try await first(
            connection.query(
                """
                INSERT INTO clients (id, name, role, scopes, organization, trusted, secret_sha256, managed_by)
                VALUES (\(client.id), \(client.name), \(client.role.rawValue), \(client.scopes), \(client.organization), \(client.trusted),
                        \(ByteBuffer(bytes: secretHash)), 'api')
                ON CONFLICT (id) DO NOTHING
                RETURNING \(unescaped: ClientRecord.columns)
                """,
                logger: logger
            )
        )
    }

    /// `IDENTITY_CLIENTS` at startup: create, or bring an existing client in line with the config.
    /// Returns whether it was created (true) or changed (false); nil when it was in line already.
    static func upsert(_ client: ConfiguredClient, on connection: PostgresConnection, logger: Logger) async throws -> Bool? {
        let rows = try await connection.query(
            """
            INSERT INTO clients (id, name, role, scopes, secret_sha256, managed_by)
            VALUES (\(client.id), \(client.id), \(client.role.rawValue), \(client.scopes), \(ByteBuffer(bytes: SecretToken.hash(client.secret))), 'config')
            ON CONFLICT (id) DO UPDATE SET role = EXCLUDED.role, scopes = EXCLUDED.scopes, secret_sha256 = EXCLUDED.secret_sha256,
                managed_by = 'config', disabled = false, updated_at = now()
            WHERE (clients.role, clients.scopes, clients.secret_sha256, clients.managed_by, clients.disabled)
                IS DISTINCT FROM (EXCLUDED.role, EXCLUDED.scopes, EXCLUDED.secret_sha256, 'config', false)
            RETURNING xmax = 0
            """,
            logger: logger
        )
        for try await created in rows.decode(Bool.self) { return created }
        return nil
    }

    struct Changes: Sendable {
        var name: String?
        var scopes: [String]?
        var organization: String??
        var trusted: Bool?
        var disabled: Bool?
        var secretHash: [UInt8]?

        var names: [String] {
            var names: [String] = []
            if name != nil { names.append("name") }
            if scopes != nil { names.append("scopes") }
            if organization != nil { names.append("organization") }
            if trusted != nil { names.append("trusted") }
            if disabled != nil { names.append("disabled") }
            if secretHash != nil { names.append("secret") }
            return names
        }
    }

    static func update(_ id: String, _ changes: Changes, on connection: PostgresConnection, logger: Logger) async throws -> ClientRecord? {
        let setOrganization = changes.organization != nil
        return try await first(
            connection.query(
                """
                UPDATE clients SET
                    name = COALESCE(\(changes.name), name),
                    scopes = COALESCE(\(changes.scopes), scopes),
                    organization = CASE WHEN \(setOrganization) THEN \(changes.organization ?? nil) ELSE organization END,
                    trusted = COALESCE(\(changes.trusted), trusted),
                    disabled = COALESCE(\(changes.disabled), disabled),
                    secret_sha256 = COALESCE(\(changes.secretHash.map { ByteBuffer(bytes: $0) }), secret_sha256),
                    updated_at = now()
                WHERE id = \(id)
                RETURNING \(unescaped: ClientRecord.columns)
                """,
                logger: logger
            )
        )
    }

    private static func first(_ rows: PostgresRowSequence) async throws -> ClientRecord? {
        for try await row in rows.decode(ClientRecord.Row.self) { return ClientRecord(row) }
        return nil
    }
}
