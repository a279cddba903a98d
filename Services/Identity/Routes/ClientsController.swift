import HTTPTypes
import Foundation
import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// `/clients`: OAuth clients (EHR systems, MedLedger services), registered by admins.
struct ClientsController {
    /// Transactions that write audit events: delivery starts once they commit.
    let outboxes: OutboxTransactions
    let clients: ClientStore
    let guardian: CallerGuard
    let verifier: TokenVerifier
    static let bodyLimit = 64 * 1024

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.add(middleware: BearerAuthMiddleware(verifier: verifier))
        routes.get("/clients") { _, context in
            _ = try await admin(context)
            let all = try await clients.list(logger: context.logger)
            return try JSONValue.object([("clients", .array(all.map(\.json)))]).response()
        }
        routes.post("/clients") { request, context in try await create(request, context: context) }
        routes.get("/clients/{id}") { _, context in try await existing(context).client.json.response() }
        routes.patch("/clients/{id}") { request, context in try await update(request, context: context) }
        routes.post("/clients/{id}/secret") { _, context in try await rotateSecret(context: context) }
        return routes
    }

    func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let caller = try await admin(context)
        let body = try JSONObjectReader(
            try await request.jsonBody(limit: Self.bodyLimit), allowed: ["clientId", "name", "role", "scopes", "organization", "trusted"])
        let id = try body.optionalString("clientId", maxLength: 256) ?? "client-" + UUID().uuidString.lowercased().prefix(8)
        let name = try body.string("name", maxLength: 1024)
        let roleName = try body.string("role", maxLength: 64)
        guard let scopes = try body.optionalStrings("scopes") else { throw Problem.badRequest("\"scopes\" is required") }
        let organization = try body.optionalString("organization", maxLength: 256)
        let trusted = try body.optionalBool("trusted") ?? false
        try ClientRules.validateID(id)
        guard let role = Role(rawValue: roleName), role.isClientRole else {
            throw Problem(.unprocessableContent, "a client's role is service or system")
        }
        try UsersController.validateName(name)
        try ClientRules.validateScopes(scopes, role: role)
        if let organization { try ClientRules.validateOrganization(organization) }
        let secret = SecretToken.generate()
        let new = ClientStore.NewClient(id: id, name: name, role: role, scopes: scopes, organization: organization, trusted: trusted)
        let created = try await outboxes.transaction(logger: context.logger) { connection -> ClientRecord? in
            guard let created = try await ClientStore.insert(new, secretHash: SecretToken.hash(secret), on: connection, logger: context.logger) else {
                return nil
            }
            try await audit(.clientCreated, client: created, by: caller, changes: [], on: connection, context: context)
            return created
        }
        guard let created else { throw Problem(.conflict, "the client id \(id) is taken") }
        var response = try created.json(withSecret: secret).response(status: .created)
        response.headers[.location] = "/clients/\(created.id)"
        response.headers[.cacheControl] = "no-store"
        return response
    }

    func update(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let (caller, client) = try await existing(context, forChange: true)
        let body = try JSONObjectReader(
            try await request.jsonBody(limit: Self.bodyLimit), allowed: ["name", "scopes", "organization", "trusted", "disabled"])
        var changes = ClientStore.Changes()
        changes.name = try body.optionalString("name", maxLength: 1024)
        if let name = changes.name { try UsersController.validateName(name) }
        changes.scopes = try body.optionalStrings("scopes")
        if let scopes = changes.scopes { try ClientRules.validateScopes(scopes, role: client.role) }
        if body.isNull("organization") {
            changes.organization = .some(nil)
        } else if let organization = try body.optionalString("organization", maxLength: 256) {
            try ClientRules.validateOrganization(organization)
            changes.organization = .some(organization)
        }
        changes.trusted = try body.optionalBool("trusted")
        changes.disabled = try body.optionalBool("disabled")
        return try await save(client, changes, by: caller, context: context).json.response()
    }

    func rotateSecret(context: ServiceRequestContext) async throws -> Response {
        let (caller, client) = try await existing(context, forChange: true)
        let secret = SecretToken.generate()
        let updated = try await save(client, ClientStore.Changes(secretHash: SecretToken.hash(secret)), by: caller, context: context)
        var response = try updated.json(withSecret: secret).response()
        response.headers[.cacheControl] = "no-store"
        return response
    }

    func save(_ client: ClientRecord, _ changes: ClientStore.Changes, by caller: CallerGuard.Caller, context: ServiceRequestContext) async throws
        -> ClientRecord
    {
        let updated = try await outboxes.transaction(logger: context.logger) { connection -> ClientRecord? in
            guard let updated = try await ClientStore.update(client.id, changes, on: connection, logger: context.logger) else { return nil }
            try await audit(.clientChanged, client: updated, by: caller, changes: changes.names, on: connection, context: context)
            return updated
        }
        guard let updated else { throw Problem.notFound("no such client") }
        return updated
    }

    func admin(_ context: ServiceRequestContext) async throws -> CallerGuard.Caller {
        let caller = try await guardian.caller(context)
        guard caller.user.role == .admin else { throw Problem.forbidden("only admins manage OAuth clients") }
        return caller
    }

    /// Clients from `IDENTITY_CLIENTS` belong to the configuration: a change through the API
    /// would be undone at the next start, so it is refused.
    func existing(_ context: ServiceRequestContext, forChange: Bool = false) async throws -> (caller: CallerGuard.Caller, client: ClientRecord) {
        let caller = try await admin(context)
        guard let id = context.parameters.get("id"), let client = try await clients.find(id: id, logger: context.logger) else {
            throw Problem.notFound("no such client")
        }
        if forChange && client.managedBy == "config" {
            throw Problem(.conflict, "client \(client.id) is managed by IDENTITY_CLIENTS; change it there")
        }
        return (caller, client)
    }

    func audit(
        _ kind: IdentityAuditEvent.Kind, client: ClientRecord, by caller: CallerGuard.Caller, changes: [String], on connection: PostgresConnection,
        context: ServiceRequestContext
    ) async throws {
        var event = IdentityAuditEvent(kind: kind, agent: .user(caller.user, address: context.clientAddress))
        event.entity = (AuditEventParts.clientSystem, client.id, client.name)
        event.sessionID = caller.session
        event.changes = changes
        try await event.row.insert(on: connection, logger: context.logger)
    }
}
