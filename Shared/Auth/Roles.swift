/// The roles of the design guide's table and the SMART v2 scopes each gets. Identity issues
/// them; the FHIR services enforce them; records' SMART configuration lists them, so they live
/// here once.
public enum Role: String, CaseIterable, Sendable, Codable {
    case admin
    case receptionist
    case technologist
    case doctor
    case patient
    /// MedLedger's own services (OAuth clients).
    case service
    /// EHR systems (OAuth clients with SMART `system/` scopes).
    case system

    public var isClientRole: Bool { self == .service || self == .system }

    /// The scopes a user of this role gets; clients get what their registration lists.
    public var userScopes: [String] {
        switch self {
        case .admin:
            ["user/Practitioner.cruds", "user/AuditEvent.rs", Scope.manageUsers, Scope.manageClients, Scope.verifyAll, Scope.erase]
        case .receptionist:
            ["user/Patient.cruds", "user/Practitioner.rs", "user/Consent.cruds", Scope.manageUsers]
        case .technologist:
            ["user/Patient.rs", "user/Practitioner.rs", "user/DiagnosticReport.crus", "user/Binary.cr"]
        case .doctor:
            [
                "user/Patient.rs", "user/Practitioner.rs", "user/DiagnosticReport.crus", "user/Binary.cr", "user/Provenance.rs",
                "user/Consent.rs", Scope.breakGlass,
            ]
        case .patient:
            [
                "patient/Patient.r", "patient/DiagnosticReport.rs", "patient/Binary.r", "patient/Provenance.rs", "patient/Consent.cruds",
                "patient/AuditEvent.rs",
            ]
        case .service, .system:
            []
        }
    }
}

/// MedLedger's own scopes (not SMART resource scopes).
public enum Scope {
    public static let ledgerAppend = "medledger/ledger.append"
    public static let auditWrite = "medledger/audit.write"
    public static let consentDecide = "medledger/consent.decide"
    public static let manageUsers = "medledger/users.manage"
    public static let manageClients = "medledger/clients.manage"
    public static let verifyAll = "medledger/verify-all"
    /// Crypto-shredding: destroying a patient's data key.
    public static let erase = "medledger/erase"
    public static let breakGlass = "medledger/break-glass"
    /// The only scope of an account that must first replace its one-time password.
    public static let changePassword = "medledger/password.change"

    public static let serviceScopes = [ledgerAppend, auditWrite, consentDecide]

    /// Every scope a token may carry, for discovery documents (client `system/` scopes follow
    /// the SMART v2 grammar and are listed by their wildcard form).
    public static var supported: [String] {
        var all: [String] = []
        for role in Role.allCases {
            for scope in role.userScopes where !all.contains(scope) { all.append(scope) }
        }
        all += serviceScopes + [changePassword, "system/*.rs", "system/*.cruds"]
        return all
    }
}
