import Foundation
import MedLedgerCore

/// One line of consent's `GET /grants?actor=` (design guide, "Consent decisions"): what a
/// patient's consent, or a doctor's break-glass session, lets an actor read now.
struct ConsentGrant: Sendable, Equatable {
    enum Scope: Sendable, Equatable {
        case all
        /// A report category (v2-0074 code, e.g. LAB).
        case category(String)
        /// One DiagnosticReport, by id.
        case report(String)
    }

    /// The patient's id (records' `patient` columns hold ids, not references).
    var patient: String
    var scope: Scope
    var until: Date?
    /// `Consent/…` or `break-glass/…`.
    var basis: String

    /// Break-glass is for emergencies: it opens every report of the patient, preliminary ones
    /// included, where a patient's consent opens only what the patient could read themselves.
    var isBreakGlass: Bool { basis.hasPrefix("break-glass/") }

    /// The grants of a `/grants` answer and its `maxAge`; nil when the answer does not have the contract's shape.
    static func parseList(_ answer: JSONValue) -> (grants: [ConsentGrant], maxAge: Int)? {
        guard let items = answer["grants"]?.arrayValue, let maxAge = answer["maxAge"]?.intValue, maxAge >= 0 else { return nil }
        var grants: [ConsentGrant] = []
        for item in items {
            guard let reference = item["patient"]?.stringValue, reference.hasPrefix("Patient/"), let basis = item["basis"]?.stringValue else { return nil }
            let patient = String(reference.dropFirst("Patient/".count))
            let scope: Scope
            switch item["scope"]?.stringValue {
            case "all": scope = .all
            case "category":
                guard let code = item["category"]?.stringValue else { return nil }
                scope = .category(code)
            case "resource":
                guard let reference = item["resource"]?.stringValue, reference.hasPrefix("DiagnosticReport/") else { return nil }
                scope = .report(String(reference.dropFirst("DiagnosticReport/".count)))
            default: return nil
            }
            var until: Date?
            if let text = item["until"]?.stringValue {
                guard let range = FHIRDate.range(of: text, kind: .instant) else { return nil }
                until = range.low
            }
            grants.append(ConsentGrant(patient: patient, scope: scope, until: until, basis: basis))
        }
        return (grants, maxAge)
    }
}
