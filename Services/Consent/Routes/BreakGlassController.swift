import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// Break-glass: a doctor states why they need a patient's reports now and gets time-limited
/// access to all of them; every start and end is a high-severity audit event. The doctor sees
/// their own sessions, the patient those about them, admins all.
struct BreakGlassController {
    let deps: ConsentDependencies
    let verifier: TokenVerifier

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.add(middleware: BearerAuthMiddleware(verifier: verifier))
        routes.post("break-glass") { request, context in try await start(request, context: context) }
        routes.get("break-glass") { request, context in try await list(request, context: context) }
        routes.get("break-glass/{id}") { _, context in try await show(context: context) }
        routes.delete("break-glass/{id}") { _, context in try await end(context: context) }
        return routes
    }

    static let fields: Set<String> = ["patient", "reason"]
    static let listLimit: ClosedRange<Int64> = 1...1000

    func start(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let (caller, doctor) = try Self.doctor(context)
        let body = try await request.jsonBody(limit: ConsentConfig.requestMaxBytes)
        guard case .object(let members) = body else { throw Problem.badRequest("the body must be a JSON object") }
        if let unknown = members.first(where: { !Self.fields.contains($0.key) }) {
            throw Problem.badRequest("unknown field \(unknown.key): break-glass takes patient and reason")
        }
        let patient = try DecisionQuestion.required(body, "patient", types: ["Patient"])
        guard case .string(let text)? = body["reason"] else {
            throw Problem(.unprocessableContent, "reason is required: say why you need access now")
        }
        let reason = text.trimmingCharacters(in: .whitespacesAndNewlines)
        // As FHIR strings: no control characters but tab, CR and LF (the audit event carries the reason).
        guard !reason.unicodeScalars.contains(where: { $0.value < 0x20 && !"\t\r\n".unicodeScalars.contains($0) }) else {
            throw Problem(.unprocessableContent, "reason must not contain control characters")
        }
        guard BreakGlassSession.reasonLength.contains(reason.count) else {
            throw Problem(
                .unprocessableContent,
                "reason must be \(BreakGlassSession.reasonLength.lowerBound) to \(BreakGlassSession.reasonLength.upperBound) characters, got \(reason.count)"
            )
        }
        try await deps.directory?.require(patient, expression: "patient", logger: context.logger)
        let now = ResourceStamp.now()
        let session = BreakGlassSession(
            id: UUID().uuidString.lowercased(), actor: doctor, patient: patient, reason: reason, started: now,
            expires: now.addingTimeInterval(TimeInterval(deps.config.breakGlassDuration.components.seconds)))
        let event = ConsentAuditEvent(kind: .breakGlassStart, caller: caller, patient: patient, session: (session.id, reason))
        try await deps.outboxes.transaction(logger: context.logger) { connection in
            try await BreakGlassStore.start(session, event: event, on: connection, logger: context.logger)
        }
        context.logger.notice("break-glass access started", metadata: ["session": "\(session.id)", "actor": "\(doctor)", "patient": "\(patient)"])
        var response = Response.json(session.json(at: now).serialized(), status: .created)
        response.headers[.location] = "/break-glass/\(session.id)"
        return response
    }

    /// Ending is for the doctor who started it; ended or expired sessions stay as they are.
    func end(context: ServiceRequestContext) async throws -> Response {
        let (caller, doctor) = try Self.doctor(context)
        let id = try Self.sessionID(context)
        let now = Date()
        let session = try await deps.outboxes.transaction(logger: context.logger) { connection -> BreakGlassSession in
            guard
                let session = try await BreakGlassStore.session(id, filter: .init(actor: doctor), lock: true, on: connection, logger: context.logger)
            else {
                throw Problem.notFound("break-glass/\(id) is not one of your sessions")
            }
            guard session.status(at: now) == "active" else { return session }
            let event = ConsentAuditEvent(kind: .breakGlassEnd, caller: caller, patient: session.patient, session: (session.id, session.reason))
            return try await BreakGlassStore.end(session, at: now, by: caller.author, event: event, on: connection, logger: context.logger)
        }
        return Response.json(session.json(at: now).serialized())
    }

    func show(context: ServiceRequestContext) async throws -> Response {
        let filter = try Self.visible(context)
        let id = try Self.sessionID(context)
        let session = try await deps.postgres.withConnection { connection in
            try await BreakGlassStore.session(id, filter: filter, on: connection, logger: context.logger)
        }
        guard let session else { throw Problem.notFound("break-glass/\(id) is not known") }
        return Response.json(session.json(at: Date()).serialized())
    }

    func list(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        var filter = try Self.visible(context)
        let limit = Int(try request.queryInteger("limit", in: Self.listLimit) ?? 100)
        if let text = request.queryText("patient") {
            guard let patient = TypedReference.parse(text, ["Patient"]) else {
                throw Problem(.unprocessableContent, "patient must be Patient/{id}, got \(text)")
            }
            // A patient asking about someone else sees nothing, as if there were nothing.
            if let own = filter.patient, own != patient { return Self.sessions([]) }
            filter.patient = patient
        }
        let sessions = try await deps.postgres.withConnection { connection in
            try await BreakGlassStore.list(filter, limit: limit, on: connection, logger: context.logger)
        }
        return Self.sessions(sessions)
    }

    private static func sessions(_ sessions: [BreakGlassSession]) -> Response {
        let now = Date()
        return Response.json(JSONValue.object([("sessions", .array(sessions.map { $0.json(at: now) }))]).serialized())
    }

    /// The session id in the path; what cannot be one is no session either (404).
    private static func sessionID(_ context: ServiceRequestContext) throws -> String {
        let id = try context.parameters.require("id")
        guard FHIRReference.isValidID(id) else { throw Problem.notFound("break-glass/\(id) is not known") }
        return id
    }

    /// The caller and their Practitioner, if they may break the glass (a doctor with the scope).
    private static func doctor(_ context: ServiceRequestContext) throws(Problem) -> (Caller, String) {
        let caller = try Caller(context: context)
        guard caller.role == .doctor, caller.grantedScopes.contains(Scope.breakGlass), let id = caller.fhirUserID("Practitioner") else {
            throw Problem.forbidden("break-glass is for doctors (scope \(Scope.breakGlass), fhirUser Practitioner/{id})")
        }
        return (caller, "Practitioner/\(id)")
    }

    /// Whose sessions the caller sees: a doctor their own, a patient those about them (their
    /// audit view), an admin all (the whole audit trail); anyone else none (403).
    private static func visible(_ context: ServiceRequestContext) throws(Problem) -> BreakGlassStore.Filter {
        let caller = try Caller(context: context)
        let auditReader = caller.scopes.contains { $0.grants(.read, onResource: "AuditEvent") }
        switch caller.role {
        case .doctor where caller.grantedScopes.contains(Scope.breakGlass):
            if let id = caller.fhirUserID("Practitioner") { return .init(actor: "Practitioner/\(id)") }
        case .patient where auditReader:
            if let id = caller.fhirUserID("Patient") { return .init(patient: "Patient/\(id)") }
        case .admin where auditReader:
            return .init()
        default:
            break
        }
        throw Problem.forbidden("break-glass sessions are shown to their doctor, their patient and admins")
    }
}
