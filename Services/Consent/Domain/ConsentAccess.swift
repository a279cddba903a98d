import MedLedgerCore

/// Which consents a caller may see (applied inside every query, so totals and paging stay
/// right): patients their own, doctors and EHR systems those that name them as the actor,
/// receptionists all (they record consents on patients' behalf), everyone else none.
enum ConsentAccess: Sendable, Equatable {
    case all
    case none
    /// Consents whose `patient` is this `Patient/x`.
    case patient(String)
    /// Consents whose actor is this `Practitioner/x` or `Organization/y`.
    case actor(String)

    static let resourceType = "Consent"

    init(_ caller: Caller) {
        switch caller.role {
        case .receptionist:
            self = .all
        case .patient:
            self = caller.fhirUserID("Patient").map { .patient("Patient/\($0)") } ?? .none
        case .doctor:
            self = caller.fhirUserID("Practitioner").map { .actor("Practitioner/\($0)") } ?? .none
        case .system:
            // An EHR client is the actor as its Organization (the token's fhirUser).
            self = caller.fhirUserID("Organization").map { .actor("Organization/\($0)") } ?? .none
        case .admin, .technologist, .service:
            self = .none
        }
    }

    /// The rule as a condition on a `consents` row aliased `alias`.
    func condition(alias a: String, _ builder: inout SQLBuilder) -> String {
        switch self {
        case .all: "TRUE"
        case .none: "FALSE"
        case .patient(let patient): "\(a).patient = \(builder.bind(patient))"
        case .actor(let actor): "\(a).actor = \(builder.bind(actor))"
        }
    }
}
