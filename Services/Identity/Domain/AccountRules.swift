import HTTPTypes
import MedLedgerCore

/// Who may manage whom (the design guide's roles table): admins manage staff and other admins,
/// receptionists manage patients, nobody else manages accounts.
extension Role {
    static let userRoles: [Role] = [.admin, .receptionist, .technologist, .doctor, .patient]

    var managedRoles: Set<Role> {
        switch self {
        case .admin: [.admin, .doctor, .receptionist, .technologist]
        case .receptionist: [.patient]
        default: []
        }
    }

    /// The FHIR resource type an account of this role links to with `fhirUser`.
    var fhirUserType: String { self == .patient ? "Patient" : "Practitioner" }
}

enum FHIRUser {
    /// `Practitioner/{id}` or `Patient/{id}` as the role requires; the id as FHIR defines it.
    static func validate(_ reference: String, role: Role) throws(Problem) {
        let parts = reference.split(separator: "/", omittingEmptySubsequences: false)
        let idIsValid =
            parts.count == 2 && (1...64).contains(parts[1].utf8.count)
            && parts[1].utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
            }
        guard idIsValid, parts[0] == role.fhirUserType else {
            throw Problem(.unprocessableContent, "fhirUser must be \(role.fhirUserType)/{id} for a \(role.rawValue) account (id: 1-64 of A-Z a-z 0-9 - .)")
        }
    }
}

/// The rules for OAuth clients: ids, scopes by role, organisations.
enum ClientRules {
    static func validateID(_ id: String) throws(Problem) {
        let allowed = id.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || [UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-")].contains(byte)
        }
        guard (3...64).contains(id.utf8.count), allowed else {
            throw Problem(.unprocessableContent, "a client id must be 3 to 64 characters of a-z, 0-9, '.', '_', '-'")
        }
    }

    /// EHR systems get SMART `system/` scopes; MedLedger services also their own scopes.
    static func validateScopes(_ scopes: [String], role: Role) throws(Problem) {
        guard !scopes.isEmpty else { throw Problem(.unprocessableContent, "a client needs at least one scope") }
        for scope in scopes {
            let allowed = SMARTScope.isSystemScope(scope) || (role == .service && Scope.serviceScopes.contains(scope))
            guard allowed else {
                let expected = role == .service ? "system/{Type}.{cruds} or one of \(Scope.serviceScopes.joined(separator: ", "))" : "system/{Type}.{cruds}"
                throw Problem(.unprocessableContent, "scope \"\(scope)\" is not allowed for a \(role.rawValue) client (expected \(expected))")
            }
        }
        guard Set(scopes).count == scopes.count else { throw Problem(.unprocessableContent, "scopes are listed twice") }
    }

    static func validateOrganization(_ reference: String) throws(Problem) {
        let parts = reference.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "Organization", (1...64).contains(parts[1].utf8.count),
            parts[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") })
        else { throw Problem(.unprocessableContent, "organization must be Organization/{id}") }
    }
}

/// SMART App Launch v2 scope grammar (`system/Observation.rs`, `system/*.cruds`).
enum SMARTScope {
    static func isSystemScope(_ scope: String) -> Bool {
        guard scope.hasPrefix("system/") else { return false }
        let rest = scope.dropFirst("system/".count)
        guard let dot = rest.lastIndex(of: ".") else { return false }
        let type = rest[..<dot]
        let permissions = rest[rest.index(after: dot)...]
        let typeIsValid =
            type == "*" || (type.first?.isUppercase == true && type.count <= 64 && type.allSatisfy { $0.isASCII && $0.isLetter })
        return typeIsValid && isPermissionString(permissions)
    }

    /// Non-empty, each of c r u d s at most once, in that order.
    static func isPermissionString(_ text: Substring) -> Bool {
        var remaining = Array("cruds")[...]
        guard !text.isEmpty else { return false }
        for character in text {
            guard let position = remaining.firstIndex(of: character) else { return false }
            remaining = remaining[(position + 1)...]
        }
        return true
    }
}

/// The `scope` parameter of a token request narrows what the account or client may have.
enum ScopeRequest {
    static func narrow(allowed: [String], requested: String?) throws(TokenEndpointError) -> [String] {
        guard let requested, !requested.isEmpty else { return allowed }
        let wanted = requested.split(separator: " ").map(String.init)
        if let extra = wanted.first(where: { !allowed.contains($0) }) {
            throw TokenEndpointError(.invalidScope, "scope \(extra) is not available to this account or client")
        }
        return allowed.filter { wanted.contains($0) }
    }
}
