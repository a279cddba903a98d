import HTTPTypes
import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// The caller and dependencies of one FHIR interaction, with the audit rules they share.
struct FHIRInteraction {
    let deps: RecordsDependencies
    let caller: Caller
    let type: ResourceType
    let logger: Logger

    init(deps: RecordsDependencies, context: ServiceRequestContext, type: String) throws(Problem) {
        self.caller = try Caller(context: context)
        guard let type = ResourceType(path: type) else {
            throw Problem.notFound("records serves Patient, Practitioner, DiagnosticReport and Binary; \(type) is not one of them")
        }
        self.deps = deps
        self.type = type
        self.logger = context.logger
    }

    /// The caller's own rule, without consent: what writes go by.
    var ownRule: AccessRule { AccessRule.rule(for: caller, on: type) }

    /// What reads go by: the own rule widened by consent (asked at most once per request).
    func readAccess() async -> ReadAccess { await ReadAccess.resolve(for: caller, grants: deps.consent) }

    func event(_ kind: RecordsAuditEvent.Kind, entity: String? = nil, patient: String? = nil, query: String? = nil, operation: String? = nil)
        -> RecordsAuditEvent
    {
        RecordsAuditEvent(kind: kind, caller: caller, type: type.rawValue, entity: entity, patient: patient, query: query, operation: operation)
    }

    /// Runs `body`; a refusal (403, 404, 410, 412, or 503 while consent cannot be asked) is
    /// audited too, as a minor failure, so that probing for records leaves a trace.
    func auditingFailures<T>(_ event: RecordsAuditEvent, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let problem as Problem where [403, 404, 409, 410, 412, 503].contains(problem.status.code) {
            var failed = event
            failed.failure = Int(problem.status.code)
            try await deps.audit.record(failed)
            throw problem
        }
    }

    /// The stored bytes of a version, or 410 for a deletion (`connection`: inside a transaction).
    func body(of stored: StoredVersion, on connection: PostgresConnection? = nil) async throws -> [UInt8] {
        guard !stored.deleted, let body = try await deps.keys.open(stored, on: connection, logger: logger) else {
            throw Problem(.gone, "\(stored.reference) was deleted (version \(stored.version))", headers: [.eTag: "W/\"\(stored.version)\""])
        }
        return body
    }
}
