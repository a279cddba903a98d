import HTTPTypes
import Hummingbird
import Logging
import MedLedgerCore

/// `POST /fhir/$verify-all`: the admin's sweep of every version and every leaf (see
/// `VerifyAllSweep`), answered as a FHIR `Parameters` and audited (findings as a tamper alarm).
struct VerifyAllController {
    let deps: RecordsDependencies

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.post("$verify-all") { request, context in try await verifyAll(request, context: context) }
        return routes
    }

    func verifyAll(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let caller = try Caller(context: context)
        try FHIRHTTP.requireJSON(request)
        try caller.requireAdmin(Scope.verifyAll, for: "$verify-all")
        let report = try await VerifyAllSweep(deps: deps, logger: context.logger).run()
        var event = RecordsAuditEvent(kind: .operation, caller: caller, type: "Parameters", operation: "verify-all")
        if report.findingsTotal > 0 {
            event.alarm = "tamper alarm: $verify-all found \(report.findingsTotal): " + report.findings.prefix(20).joined(separator: "; ")
            context.logger.error("$verify-all found inconsistencies", metadata: ["findings": "\(report.findingsTotal)"])
        } else {
            event.result = "$verify-all: \(report.result)"
        }
        try await deps.audit.record(event)
        return FHIRHTTP.jsonResponse(Self.parameters(report).serialized())
    }

    static func parameters(_ report: VerifyAllSweep.Report) -> JSONValue {
        func integer(_ name: String, _ value: Int64) -> JSONValue { .object([("name", .string(name)), ("valueInteger", .number(String(value)))]) }
        var parameters: [JSONValue] = [
            .object([("name", .string("result")), ("valueCode", .string(report.result))]),
            integer("versionsChecked", Int64(report.versions)), integer("versionsVerified", Int64(report.verified)),
            integer("versionsPending", Int64(report.pending)), integer("versionsErased", Int64(report.erased)),
            integer("leavesScanned", Int64(report.leavesScanned)),
            .object([("name", .string("ledgerCheck")), ("valueCode", .string(report.ledgerCheck))]),
            integer("findingsTotal", Int64(report.findingsTotal)),
        ]
        if let size = report.ledgerTreeSize { parameters.append(integer("ledgerTreeSize", size)) }
        for finding in report.findings { parameters.append(.object([("name", .string("finding")), ("valueString", .string(finding))])) }
        return .object([("resourceType", .string("Parameters")), ("parameter", .array(parameters))])
    }
}
