import MedLedgerCore

/// Which events a caller may see (applied inside every query, so totals and pages stay exact):
/// admins the whole trail, a patient the events about themselves (who read their reports and
/// when, break-glass included), everyone else nothing.
enum AuditAccess: Sendable, Equatable {
    case all
    case none
    /// Events whose patients include this `Patient/x`.
    case patient(String)

    static let resourceType = "AuditEvent"

    init(_ caller: Caller) {
        switch caller.role {
        case .admin:
            self = .all
        case .patient:
            self = caller.fhirUserID("Patient").map { .patient("Patient/\($0)") } ?? .none
        case .receptionist, .technologist, .doctor, .service, .system:
            self = .none
        }
    }

    /// The one patient every visible event is about (nil: any).
    var patient: String? {
        if case .patient(let patient) = self { return patient }
        return nil
    }
}
