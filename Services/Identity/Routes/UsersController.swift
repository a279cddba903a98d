import HTTPTypes
import Foundation
import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// `/users`: accounts, managed by role (admins: staff and admins; receptionists: patients).
struct UsersController {
    /// Transactions that write audit events: delivery starts once they commit.
    let outboxes: OutboxTransactions
    let users: UserStore
    let guardian: CallerGuard
    let login: LoginService
    let hasher: PasswordHasher
    let verifier: TokenVerifier
    static let bodyLimit = 64 * 1024

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.add(middleware: BearerAuthMiddleware(verifier: verifier))
        routes.get("/users/me") { _, context in try await guardian.caller(context).user.json.response() }
        routes.post("/users/me/password") { request, context in try await changeOwnPassword(request, context: context) }
        routes.get("/users") { request, context in try await list(request, context: context) }
        routes.post("/users") { request, context in try await create(request, context: context) }
        routes.get("/users/{id}") { _, context in try await managedUser(context).target.json.response() }
        routes.patch("/users/{id}") { request, context in try await update(request, context: context) }
        return routes
    }

    func changeOwnPassword(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let caller = try await guardian.caller(context, forPasswordChange: true)
        let body = try JSONObjectReader(try await request.jsonBody(limit: Self.bodyLimit), allowed: ["currentPassword", "newPassword"])
        let current = try body.string("currentPassword", maxLength: 1024)
        let new = try body.string("newPassword", maxLength: 1024)
        guard try await hasher.verify(current, hash: caller.user.passwordHash) else {
            // A wrong current password is a password guess like any other.
            try await login.recordFailure(
                caller.user, username: caller.user.username, address: context.clientAddress, why: "wrong current password",
                countsTowardsLockout: true, logger: context.logger)
            throw Problem.forbidden("the current password is not correct")
        }
        try PasswordPolicy.check(new, username: caller.user.username)
        guard new != current else { throw Problem(.unprocessableContent, "the new password must differ from the current one") }
        let hash = try await hasher.hash(new)
        try await outboxes.transaction(logger: context.logger) { connection in
            let changes = UserStore.Changes(passwordHash: hash, mustChangePassword: false)
            _ = try await UserStore.update(caller.user.id, changes, on: connection, logger: context.logger)
            var event = IdentityAuditEvent(kind: .passwordChanged, agent: .user(caller.user, address: context.clientAddress))
            event.entity = (AuditEventParts.userSystem, caller.user.id.uuidString.lowercased(), caller.user.username)
            event.patient = caller.user.patient
            event.changes = ["password"]
            try await event.row.insert(on: connection, logger: context.logger)
        }
        return Response(status: .noContent)
    }

    func list(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let caller = try await guardian.caller(context)
        let managed = caller.user.role.managedRoles
        guard !managed.isEmpty else { throw Problem.forbidden("only admins and receptionists list accounts") }
        var roles = managed.map(\.rawValue)
        if let wanted = request.queryText("role") {
            guard let role = Role(rawValue: wanted), Role.userRoles.contains(role) else {
                throw Problem.badRequest("role must be one of \(Role.userRoles.map(\.rawValue).joined(separator: ", "))")
            }
            roles = roles.filter { $0 == wanted }
        }
        let limit = Int(try request.queryInteger("limit", in: 1...1000) ?? 100)
        let offset = Int(try request.queryInteger("offset", in: 0...1_000_000) ?? 0)
        let found = try await users.list(roles: roles, limit: limit, offset: offset, logger: context.logger)
        return Response.json(JSONValue.object([("users", .array(found.map(\.json)))]).serialized())
    }

    func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let caller = try await guardian.caller(context)
        guard !caller.user.role.managedRoles.isEmpty else { throw Problem.forbidden("only admins and receptionists create accounts") }
        let body = try JSONObjectReader(
            try await request.jsonBody(limit: Self.bodyLimit), allowed: ["username", "password", "role", "name", "fhirUser"])
        let username = try body.string("username", maxLength: 256).lowercased()
        let password = try body.string("password", maxLength: 1024)
        let roleName = try body.string("role", maxLength: 64)
        let name = try body.string("name", maxLength: 1024)
        let fhirUser = try body.optionalString("fhirUser", maxLength: 256)
        guard let role = Role(rawValue: roleName), Role.userRoles.contains(role) else {
            throw Problem(.unprocessableContent, "role must be one of \(Role.userRoles.map(\.rawValue).joined(separator: ", "))")
        }
        guard caller.user.role.managedRoles.contains(role) else {
            throw Problem.forbidden("a \(caller.user.role.rawValue) may not create \(role.rawValue) accounts")
        }
        try Username.validate(username)
        try Self.validateName(name)
        if let fhirUser { try FHIRUser.validate(fhirUser, role: role) }
        try PasswordPolicy.check(password, username: username)
        // A patient's first password comes from the receptionist, so it is one-time.
        let new = UserStore.NewUser(
            username: username, name: name, role: role, fhirUser: fhirUser, passwordHash: try await hasher.hash(password),
            mustChangePassword: role == .patient)
        let created = try await outboxes.transaction(logger: context.logger) { connection -> UserRecord? in
            guard let created = try await UserStore.insert(new, on: connection, logger: context.logger) else { return nil }
            try await audit(.accountCreated, target: created, by: caller, changes: [], on: connection, context: context)
            return created
        }
        guard let created else { throw Problem(.conflict, "the username \(username) is taken") }
        var response = try created.json.response(status: .created)
        response.headers[.location] = "/users/\(created.id.uuidString.lowercased())"
        return response
    }

    func update(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let (caller, target) = try await managedUser(context)
        let body = try JSONObjectReader(
            try await request.jsonBody(limit: Self.bodyLimit), allowed: ["disabled", "password", "role", "name", "fhirUser", "unlock"])
        var changes = UserStore.Changes()
        changes.name = try body.optionalString("name", maxLength: 1024)
        if let name = changes.name { try Self.validateName(name) }
        changes.disabled = try body.optionalBool("disabled")
        var role = target.role
        if let roleName = try body.optionalString("role", maxLength: 64) {
            guard let newRole = Role(rawValue: roleName), Role.userRoles.contains(newRole) else {
                throw Problem(.unprocessableContent, "role must be one of \(Role.userRoles.map(\.rawValue).joined(separator: ", "))")
            }
            guard caller.user.role.managedRoles.contains(newRole) else {
                throw Problem.forbidden("a \(caller.user.role.rawValue) may not make an account \(newRole.rawValue)")
            }
            role = newRole
            changes.role = newRole
        }
        if body.isNull("fhirUser") {
            changes.fhirUser = .some(nil)
        } else if let fhirUser = try body.optionalString("fhirUser", maxLength: 256) {
            changes.fhirUser = .some(fhirUser)
        }
        if let fhirUser = changes.fhirUser ?? target.fhirUser { try FHIRUser.validate(fhirUser, role: role) }
        if caller.user.id == target.id, changes.disabled == true || (changes.role.map { $0 != target.role } ?? false) {
            throw Problem(.conflict, "you cannot disable your own account or change your own role")
        }
        if let password = try body.optionalString("password", maxLength: 1024) {
            try PasswordPolicy.check(password, username: target.username)
            changes.passwordHash = try await hasher.hash(password)
            changes.mustChangePassword = true  // someone else chose it
        }
        if let unlock = try body.optionalBool("unlock") { changes.unlock = unlock }
        let updated = try await outboxes.transaction(logger: context.logger) { connection -> UserRecord? in
            guard let updated = try await UserStore.update(target.id, changes, on: connection, logger: context.logger) else { return nil }
            if changes.disabled == true || changes.passwordHash != nil {
                try await SessionStore.endAll(
                    userID: target.id, reason: changes.disabled == true ? "account-disabled" : "password-reset", on: connection, logger: context.logger)
            }
            try await audit(.accountChanged, target: updated, by: caller, changes: changes.names, on: connection, context: context)
            return updated
        }
        guard let updated else { throw Problem.notFound("no such account") }
        return try updated.json.response()
    }

    /// The caller and the account named in the path, if the caller manages it (404 otherwise, so
    /// that nobody learns which accounts exist outside their remit).
    func managedUser(_ context: ServiceRequestContext) async throws -> (caller: CallerGuard.Caller, target: UserRecord) {
        let caller = try await guardian.caller(context)
        let managed = caller.user.role.managedRoles
        guard !managed.isEmpty else { throw Problem.forbidden("only admins and receptionists manage accounts") }
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)),
            let target = try await users.find(id: id, logger: context.logger),
            managed.contains(target.role)
        else { throw Problem.notFound("no such account") }
        return (caller, target)
    }

    func audit(
        _ kind: IdentityAuditEvent.Kind, target: UserRecord, by caller: CallerGuard.Caller, changes: [String], on connection: PostgresConnection,
        context: ServiceRequestContext
    ) async throws {
        var event = IdentityAuditEvent(kind: kind, agent: .user(caller.user, address: context.clientAddress))
        event.entity = (AuditEventParts.userSystem, target.id.uuidString.lowercased(), target.username)
        event.patient = target.patient
        event.sessionID = caller.session
        event.changes = changes
        try await event.row.insert(on: connection, logger: context.logger)
    }

    static func validateName(_ name: String) throws(Problem) {
        guard (1...200).contains(name.count), !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw Problem(.unprocessableContent, "name must be 1 to 200 characters")
        }
    }
}

extension JSONValue {
    func response(status: HTTPResponse.Status = .ok) throws -> Response { Response.json(serialized(), status: status) }
}
