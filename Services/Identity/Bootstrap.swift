import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// What identity sets up at startup: the first admin of an empty database and the clients of
/// `IDENTITY_CLIENTS`. Both are idempotent, so every start may run them.
enum Bootstrap {
    static func run(config: IdentityConfig, users: UserStore, hasher: PasswordHasher, outboxes: OutboxTransactions, logger: Logger)
        async throws
    {
        for client in config.clients {
            try await outboxes.transaction(logger: logger) { connection in
                guard let created = try await ClientStore.upsert(client, on: connection, logger: logger) else { return }
                var event = IdentityAuditEvent(kind: created ? .clientCreated : .clientChanged, agent: Self.configuration("IDENTITY_CLIENTS"))
                event.detail = created ? "client registered from the configuration" : "client brought in line with the configuration"
                event.entity = (AuditEventParts.clientSystem, client.id, client.id)
                try await event.row.insert(on: connection, logger: logger)
            }
        }
        if !config.clients.isEmpty {
            logger.info("configured OAuth clients", metadata: ["clients": "\(config.clients.map(\.description).joined(separator: "; "))"])
        }
        guard let admin = config.bootstrapAdmin, try await !users.anyAdminExists(logger: logger) else { return }
        let new = UserStore.NewUser(
            username: admin.username, name: "Administrator", role: .admin, fhirUser: nil, passwordHash: try await hasher.hash(admin.password),
            mustChangePassword: false)
        try await outboxes.transaction(logger: logger) { connection in
            guard let created = try await UserStore.insert(new, on: connection, logger: logger) else { return }
            var event = IdentityAuditEvent(kind: .accountCreated, agent: Self.configuration("MEDLEDGER_ADMIN_USER"))
            event.detail = "bootstrap admin created from the configuration"
            event.entity = (AuditEventParts.userSystem, created.id.uuidString.lowercased(), created.username)
            try await event.row.insert(on: connection, logger: logger)
            logger.notice("created the bootstrap admin", metadata: ["username": "\(created.username)"])
        }
    }

    /// The deployment's configuration as the agent of what it sets up: the setting's name, no address.
    static func configuration(_ setting: String) -> AuditAgent { AuditAgent(username: setting, address: "local") }
}
