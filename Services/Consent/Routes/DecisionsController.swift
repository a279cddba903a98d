import Foundation
import HTTPTypes
import Hummingbird
import MedLedgerCore

/// What records asks before it shows a report to someone who is neither its patient nor their
/// assigned doctor: `POST /decisions` for one report, `GET /grants` for all of an actor's
/// grants (records caches either for `maxAge` seconds). For MedLedger's services: scope
/// `medledger/consent.decide`.
struct DecisionsController {
    let deps: ConsentDependencies
    let verifier: TokenVerifier

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.add(middleware: BearerAuthMiddleware(verifier: verifier, anyScope: [Scope.consentDecide]))
        routes.post("decisions") { request, context in try await decide(request, context: context) }
        routes.get("grants") { request, context in try await grants(request, context: context) }
        return routes
    }

    func decide(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let question = try DecisionQuestion(try await request.jsonBody(limit: ConsentConfig.requestMaxBytes))
        let basis = try await GrantStore.decide(question, at: Date(), postgres: deps.postgres, logger: context.logger)
        return Response.json(
            JSONValue.object([
                ("decision", .string(basis == nil ? "deny" : "permit")), ("basis", basis.map(JSONValue.string) ?? .null),
                ("maxAge", .number(String(deps.config.maxAge))),
            ]).serialized())
    }

    func grants(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let text = request.queryText("actor") else { throw Problem.badRequest("actor is required: GET /grants?actor=Practitioner/{id}") }
        let types = ["Practitioner", "Organization"]
        guard let actor = TypedReference.parse(text, types) else {
            throw Problem(.unprocessableContent, "actor must be \(TypedReference.shapes(types)), got \(text)")
        }
        let held = try await GrantStore.held(by: actor, at: Date(), postgres: deps.postgres, logger: context.logger)
        let grants: [JSONValue] = held.map { grant in
            .object([
                ("patient", .string(grant.patient)), ("scope", .string(grant.scope)), ("category", grant.category.map(JSONValue.string) ?? .null),
                ("resource", grant.resource.map(JSONValue.string) ?? .null),
                ("until", grant.until.map { .string(FHIRDate.instantText(Micros.date($0))) } ?? .null), ("basis", .string(grant.basis)),
            ])
        }
        return Response.json(JSONValue.object([("grants", .array(grants)), ("maxAge", .number(String(deps.config.maxAge)))]).serialized())
    }
}
