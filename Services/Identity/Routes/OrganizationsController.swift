import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// `/organizations`: the organizations of the registered EHR systems (enabled `system` clients).
/// A patient's app lists them to grant one access to their reports, and the consent service
/// checks that a grant's Organization exists; neither reveals more than a name.
struct OrganizationsController {
    let postgres: PostgresClient
    let guardian: CallerGuard
    let verifier: TokenVerifier

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.add(middleware: BearerAuthMiddleware(verifier: verifier))
        routes.get("/organizations") { _, context in
            try await requireCaller(context)
            let all = try await organizations(id: nil, logger: context.logger)
            return try JSONValue.object([("organizations", .array(all))]).response()
        }
        routes.get("/organizations/{id}") { _, context in
            try await requireCaller(context)
            let id = try context.parameters.require("id")
            guard let organization = try await organizations(id: id, logger: context.logger).first else {
                throw Problem.notFound("no EHR system is registered for Organization/\(id)")
            }
            return try organization.response()
        }
        return routes
    }

    /// Any user with a full session, or any client.
    private func requireCaller(_ context: ServiceRequestContext) async throws {
        guard let token = context.token else { throw Problem.unauthorized("a bearer token is required") }
        if let role = Role(rawValue: token.role), role.isClientRole { return }
        _ = try await guardian.caller(context)
    }

    /// `{"reference": "Organization/x", "name": …}` per organization (the first of its clients' names).
    private func organizations(id: String?, logger: Logger) async throws -> [JSONValue] {
        let reference = id.map { "Organization/" + $0 }
        let rows = try await postgres.query(
            """
            SELECT organization, min(name) FROM clients
            WHERE role = 'system' AND NOT disabled AND organization IS NOT NULL AND (\(reference)::text IS NULL OR organization = \(reference))
            GROUP BY organization ORDER BY organization
            """, logger: logger)
        var result: [JSONValue] = []
        for try await (organization, name) in rows.decode((String, String).self) {
            result.append(.object([("reference", .string(organization)), ("name", .string(name))]))
        }
        return result
    }
}
