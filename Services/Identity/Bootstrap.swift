import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// What identity sets up at startup: the first admin of an empty database and the clients of
/// `IDENTITY_CLIENTS`. Both are idempotent, so every start may run them.
enum Bootstrap {
    static func run(config: IdentityConfig, users: UserStore, clients: ClientStore, hasher: PasswordHasher, postgres: PostgresClient, logger: Logger)
        async throws
    {
        for client in config.clients {
            try await clients.upsert(client, logger: logger)
        }
        if !config.clients.isEmpty {
            logger.info("configured OAuth clients", metadata: ["clients": "\(config.clients.map(\.description).joined(separator: "; "))"])
        }
        guard let admin = config.bootstrapAdmin, try await !users.anyAdminExists(logger: logger) else { return }
        let new = UserStore.NewUser(
            username: admin.username, name: "Administrator", role: .admin, fhirUser: nil, passwordHash: try await hasher.hash(admin.password),
            mustChangePassword: false)
        try await Database.transaction(postgres, logger: logger) { connection in
            guard let created = try await UserStore.insert(new, on: connection, logger: logger) else { return }
            var event = IdentityAuditEvent(kind: .accountCreated, agent: AuditAgent(username: "MEDLEDGER_ADMIN_USER", address: "local"))
            event.detail = "bootstrap admin created from the configuration"
            event.subjectUserID = created.id
            event.entity = (AuditEventParts.userSystem, created.id.uuidString.lowercased(), created.username)
            try await AuditOutbox.record(event, on: connection, logger: logger)
            logger.notice("created the bootstrap admin", metadata: ["username": "\(created.username)"])
        }
    }
}
