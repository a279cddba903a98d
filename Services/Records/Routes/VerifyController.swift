import HTTPTypes
import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// `$verify` on a version or on the current version: for whoever may read that version, a
/// FHIR `Parameters` with the recomputed commitment, the checks and everything needed to
/// verify the version offline (entry, salt, signed checkpoint, C2SP tlog-proof).
struct VerifyController {
    let deps: RecordsDependencies

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.get("{type}/{id}/$verify") { request, context in try await verify(request, context: context, version: nil) }
        routes.get("{type}/{id}/_history/{vid}/$verify") { request, context in
            guard let version = Int(try context.parameters.require("vid")), version > 0 else {
                throw Problem.notFound("\(try context.parameters.require("type"))/\(try context.parameters.require("id")) has no such version")
            }
            return try await verify(request, context: context, version: version)
        }
        return routes
    }

    func verify(_ request: Request, context: ServiceRequestContext, version: Int?) async throws -> Response {
        let interaction = try FHIRInteraction(deps: deps, context: context, type: try context.parameters.require("type"))
        let id = try context.parameters.require("id")
        try FHIRHTTP.requireJSON(request)
        try interaction.caller.require(.read, on: interaction.type)
        let target = "\(interaction.type.rawValue)/\(id)" + (version.map { "/_history/\($0)" } ?? "")
        return try await interaction.auditingFailures(interaction.event(.operation, entity: target, operation: "verify")) {
            let access = await interaction.readAccess()
            let stored = try await deps.postgres.withConnection { connection in
                let rule = try await access.rule(on: interaction.type, id: id, on: connection, logger: interaction.logger)
                if let version {
                    return try await ResourceReads.version(interaction.type, id: id, version: version, rule: rule, on: connection, logger: interaction.logger)
                } else {
                    return try await ResourceReads.current(interaction.type, id: id, rule: rule, on: connection, logger: interaction.logger)
                }
            }
            guard let stored else { throw access.hidden("\(target) is not known") }
            let report = try await VersionVerifier(deps: deps, logger: interaction.logger).verify(stored)
            var event = interaction.event(.operation, entity: stored.versionReference, patient: stored.patient, operation: "verify")
            event.breakGlass = access.breakGlass(for: stored.patient)
            if report.verdict == .mismatch {
                let alarm = "tamper alarm: " + report.findings.joined(separator: "; ")
                interaction.logger.error("a stored version failed $verify", metadata: ["version": "\(stored.versionReference)", "findings": "\(report.findings)"])
                event.alarm = alarm
            } else {
                event.result = "$verify: \(report.verdict.rawValue)"
            }
            try await deps.audit.record(event)
            return FHIRHTTP.jsonResponse(Self.parameters(report).serialized())
        }
    }

    /// The FHIR `Parameters` of a verification (names as openapi/records.yaml documents them).
    static func parameters(_ report: VersionVerification) -> JSONValue {
        var parameters: [JSONValue] = [
            parameter("result", ("valueCode", .string(report.verdict.rawValue))),
            parameter("target", ("valueReference", .object([("reference", .string(report.target))]))),
        ]
        if let commitment = report.commitment { parameters.append(parameter("commitment", ("valueBase64Binary", .string(commitment.base64String)))) }
        if let salt = report.salt { parameters.append(parameter("salt", ("valueBase64Binary", .string(salt.base64String)))) }
        parameters.append(parameter("commitmentMatchesStored", ("valueBoolean", .bool(report.commitmentMatchesStored))))
        if let matches = report.commitmentMatchesLedger { parameters.append(parameter("commitmentMatchesLedger", ("valueBoolean", .bool(matches)))) }
        if let matches = report.searchColumnsMatch { parameters.append(parameter("searchColumnsMatch", ("valueBoolean", .bool(matches)))) }
        if let index = report.leafIndex { parameters.append(parameter("leafIndex", ("valueInteger", .number(String(index))))) }
        if let entry = report.entry { parameters.append(parameter("entry", ("valueString", .string(entry)))) }
        if let checkpoint = report.checkpoint { parameters.append(parameter("checkpoint", ("valueString", .string(checkpoint)))) }
        if let proof = report.tlogProof { parameters.append(parameter("tlogProof", ("valueString", .string(proof)))) }
        for finding in report.findings { parameters.append(parameter("issue", ("valueString", .string(finding)))) }
        return .object([("resourceType", .string("Parameters")), ("parameter", .array(parameters))])
    }

    private static func parameter(_ name: String, _ value: (key: String, value: JSONValue)) -> JSONValue {
        .object([("name", .string(name)), value])
    }
}
