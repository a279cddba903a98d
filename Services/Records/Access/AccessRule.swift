import MedLedgerCore

/// Which resources of a type a caller may see: the compartments of the design guide's role
/// table. Applied inside every query (search totals and paging stay right) and to every
/// version that read, vread and history return.
enum AccessRule: Sendable, Equatable {
    case all
    case none
    /// Resources in the compartments of patients whose `generalPractitioner` is this reference.
    case assignedTo(practitioner: String)
    /// A patient's own Patient; with `releasedOnly`, only their released reports and the
    /// Binaries those reports present.
    case ownedBy(patient: String, releasedOnly: Bool)
    /// Resources this caller created (a technologist's reports and images).
    case authoredBy(String)
    /// What patients' consents and break-glass sessions open to this caller (never empty).
    case granted([ConsentGrant])
    /// Any of these (a doctor's assigned patients, and what was granted to them).
    case anyOf([AccessRule])

    /// Report statuses a patient may see (design guide: own final/amended/corrected/appended).
    static let releasedStatuses = ["final", "amended", "corrected", "appended"]

    static func rule(for caller: Caller, on type: ResourceType) -> AccessRule {
        switch (caller.role, type) {
        case (_, .practitioner):
            return .all
        case (.receptionist, .patient), (.technologist, .patient):
            return .all
        case (.service, .patient):
            // MedLedger's own services (consent checks that a grant's patient exists); their scopes still apply.
            return .all
        case (.technologist, .diagnosticReport), (.technologist, .binary):
            return caller.fhirUser.map { .authoredBy($0) } ?? .none
        case (.doctor, _):
            return caller.fhirUserID(.practitioner).map { .assignedTo(practitioner: "Practitioner/\($0)") } ?? .none
        case (.patient, _):
            guard let id = caller.fhirUserID(.patient) else { return .none }
            return .ownedBy(patient: id, releasedOnly: type != .patient)
        case (.system, _):
            // Untrusted EHR clients need each patient's consent (the consent service, later).
            return caller.trusted ? .all : .none
        case (.admin, _), (.receptionist, _), (.service, _):
            return .none
        }
    }
}
