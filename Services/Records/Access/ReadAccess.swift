import Foundation
import HTTPTypes
import Logging
import MedLedgerCore
import PostgresNIO

/// The rule every read applies (read, vread, history, search, `_include`, `$verify`, Binary,
/// Provenance): the caller's own rule, widened by what patients granted. Writes never use it:
/// consent and break-glass grant reading only.
struct ReadAccess: Sendable {
    let caller: Caller
    /// nil when the caller's access does not depend on consent.
    let consent: GrantLookup?

    static func resolve(for caller: Caller, grants: ConsentGrantCache) async -> ReadAccess {
        guard let actor = caller.consentActor else { return ReadAccess(caller: caller, consent: nil) }
        return ReadAccess(caller: caller, consent: await grants.lookup(actor: actor))
    }

    /// The rule for `type`; with `patients`, only those patients' grants go into it (what a
    /// query's rows can belong to: grants of other patients could not open any of them).
    func rule(on type: ResourceType, patients: Set<String>? = nil) -> AccessRule {
        let own = AccessRule.rule(for: caller, on: type)
        guard own != .all, case .grants(var grants)? = consent else { return own }
        if let patients { grants = grants.filter { patients.contains($0.patient) } }
        guard !grants.isEmpty else { return own }
        return own == .none ? .granted(grants) : .anyOf([own, .granted(grants)])
    }

    /// The rule for one resource: its versions' patients narrow the grants first, so that a
    /// reader holding a thousand grants does not send them all with every read.
    func rule(on type: ResourceType, id: String, on connection: PostgresConnection, logger: Logger) async throws -> AccessRule {
        guard case .grants(let grants)? = consent, !grants.isEmpty, AccessRule.rule(for: caller, on: type) != .all else { return rule(on: type) }
        return rule(on: type, patients: try await ResourceReads.patients(type, id: id, on: connection, logger: logger))
    }

    /// The break-glass session in force for this patient (its basis), for the audit trail.
    func breakGlass(for patient: String?) -> String? {
        guard let patient, case .grants(let grants)? = consent else { return nil }
        return grants.first { $0.isBreakGlass && $0.patient == patient }?.basis
    }

    /// Consent could not be asked: what the rule hides may be the caller's to read after all.
    var consentUnavailable: Bool { consent == .unavailable }

    /// The answer for a resource the rule hides: 404, or 503 while consent cannot be asked
    /// (fail closed, and the same whether or not the resource exists).
    func hidden(_ detail: String) -> Problem {
        guard consentUnavailable else { return Problem.notFound(detail) }
        return Self.consentUnavailableProblem
    }

    static let consentUnavailableProblem = Problem(
        .serviceUnavailable,
        "the consent service cannot be reached, so access granted by patients' consent cannot be checked now; what you may read without consent is still served",
        headers: [.retryAfter: "5"])

    /// For searches answered without consent's grants: a warning in the Bundle.
    static let consentUnavailableWarning = FHIRIssue(
        code: "transient",
        diagnostics: "the consent service cannot be reached: these results leave out what patients' consents grant you (fail closed); retry shortly")
}

extension Caller {
    /// Whom consent knows this caller as: a doctor's Practitioner, an external EHR system's
    /// Organization (design guide: an EHR client is the actor as its Organization). Others'
    /// access does not depend on consent (a trusted EHR system needs none).
    var consentActor: String? {
        switch role {
        case .doctor: fhirUserID(.practitioner).map { "Practitioner/\($0)" }
        case .system where !trusted: fhirUser.flatMap { $0.hasPrefix("Organization/") ? $0 : nil }
        default: nil
        }
    }
}
