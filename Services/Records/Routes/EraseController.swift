import HTTPTypes
import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// `POST /fhir/Patient/{id}/$erase` (admin, `medledger/erase`): crypto-shredding. The patient's
/// data key is destroyed, so every version sealed under it (bodies, salts, Binary content) can
/// no longer be read (410); their plaintext search values (all but the doctor assignment, which
/// access control needs) are deleted and their resources leave searches. The version rows and the ledger stay: every other patient's proofs remain valid,
/// and the erased versions' leaves reveal nothing without the salts that are now gone.
struct EraseController {
    let deps: RecordsDependencies

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        // `{type}`, not `Patient`: a constant segment would take every `Patient/…` path from the
        // generic routes (the router does not backtrack).
        routes.post("{type}/{id}/$erase") { request, context in
            guard try context.parameters.require("type") == "Patient" else {
                throw Problem.notFound("$erase is defined on Patient only (a patient's data key is what it destroys)")
            }
            return try await erase(request, context: context)
        }
        return routes
    }

    func erase(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let caller = try Caller(context: context)
        try FHIRHTTP.requireJSON(request)
        try caller.requireAdmin(Scope.erase, for: "$erase")
        let id = try context.parameters.require("id")
        let owner = "Patient/\(id)"
        let logger = context.logger
        let erased = try await deps.writeTransaction(logger: logger) { connection -> Int in
            let found = try await connection.query(
                "SELECT 1 FROM resources WHERE type = 'Patient' AND id = \(id) FOR UPDATE", logger: logger
            ).collect()
            guard !found.isEmpty else { throw Problem.notFound("\(owner) is not known") }
            try await deps.keys.destroy(owner, on: connection, logger: logger)
            // The patient's compartment: their Patient and everything whose `patient` is them.
            let rows = try await connection.query(
                """
                WITH gone AS (
                    UPDATE resources SET deleted = true
                    WHERE (type = 'Patient' AND id = \(id)) OR (type <> 'Practitioner' AND patient = \(id))
                    RETURNING type, id),
                -- The Patient's general-practitioner rows stay: access control, like the `patient`
                -- column, so the assigned doctor learns "erased" (410) rather than "unknown".
                unindexed AS (
                    DELETE FROM search_index s USING gone g
                    WHERE s.type = g.type AND s.id = g.id AND NOT (s.type = 'Patient' AND s.param = 'general-practitioner'))
                SELECT count(*) FROM gone
                """,
                logger: logger
            ).collect()
            let event = RecordsAuditEvent(kind: .operation, caller: caller, type: "Patient", entity: owner, patient: id, operation: "erase")
            try await AuditLog.record(event, on: connection, logger: logger)
            return try rows.first?.decode(Int.self) ?? 0
        }
        deps.keys.forget(owner)
        logger.notice("a patient's data was erased (crypto-shredding)", metadata: ["patient": "\(owner)", "resources": "\(erased)"])
        let outcome = FHIRIssue(code: "informational", diagnostics: "\(owner) erased: its data key is destroyed; \(erased) resources can no longer be read")
        let body = JSONValue.object([("resourceType", .string("OperationOutcome")), ("issue", .array([outcome.json(severity: "information")]))])
        return FHIRHTTP.jsonResponse(body.serialized())
    }
}
