import JWTKit

/// The FHIR interactions a SMART v2 scope grants, by their letter (`c r u d s`).
package enum Interaction: Character, Sendable {
    case create = "c"
    case read = "r"
    case update = "u"
    case delete = "d"
    case search = "s"

    package var verb: String {
        switch self {
        case .create: "create"
        case .read: "read"
        case .update: "update"
        case .delete: "delete"
        case .search: "search"
        }
    }
}

/// Who is asking, from their verified access token: what every FHIR service (records, consent)
/// decides access on.
package struct Caller: Sendable {
    package var role: Role
    /// `Practitioner/x`, `Patient/y`, or a client's `Organization/z`.
    package var fhirUser: String?
    package var subject: String
    package var scopes: [SMARTScope]
    /// Every scope of the token, SMART or not (`medledger/…`).
    package var grantedScopes: Set<String> = []
    /// An in-house EHR client that needs no patient consent.
    package var trusted: Bool
    package var address: String

    package init(token: AccessToken, address: String) throws(Problem) {
        guard let role = Role(rawValue: token.role) else { throw Problem.forbidden("the token's role \(token.role) has no access here") }
        self.role = role
        fhirUser = token.fhirUser
        subject = token.sub.value
        scopes = token.scope.split(separator: " ").compactMap(SMARTScope.init)
        grantedScopes = token.scopes
        trusted = token.trusted ?? false
        self.address = address
    }

    /// A caller remembered from an earlier token (records' subscriptions act for their owner
    /// long after the token that created them expired).
    package init(role: Role, fhirUser: String?, subject: String, scope: String, trusted: Bool) {
        self.role = role
        self.fhirUser = fhirUser
        self.subject = subject
        scopes = scope.split(separator: " ").compactMap(SMARTScope.init)
        grantedScopes = Set(scope.split(separator: " ").map(String.init))
        self.trusted = trusted
        address = "-"
    }

    /// The caller of a request under BearerAuthMiddleware (401 without a token).
    package init(context: ServiceRequestContext) throws(Problem) {
        guard let token = context.token else { throw Problem.unauthorized("a bearer token is required") }
        try self.init(token: token, address: context.clientAddress)
    }

    /// The id in `fhirUser` when it names a resource of type `type` (a doctor's Practitioner
    /// id, a patient's Patient id).
    package func fhirUserID(_ type: String) -> String? {
        guard let fhirUser, fhirUser.hasPrefix(type + "/") else { return nil }
        let id = fhirUser.dropFirst(type.count + 1)
        return id.isEmpty ? nil : String(id)
    }

    /// 403 unless some scope grants `interaction` on the resource type `name`.
    package func require(_ interaction: Interaction, onResource name: String) throws(Problem) {
        guard scopes.contains(where: { $0.grants(interaction, onResource: name) }) else {
            throw Problem.forbidden("your scopes do not allow \(interaction.verb) on \(name)")
        }
    }

    /// 403 unless the caller is an admin whose token carries `scope` (system operations).
    package func requireAdmin(_ scope: String, for operation: String) throws(Problem) {
        guard role == .admin, grantedScopes.contains(scope) else { throw Problem.forbidden("\(operation) is for admins (scope \(scope))") }
    }

    package var isClient: Bool { role.isClientRole }

    /// Who wrote something, as stored with it: the caller's `fhirUser`, else its account or client.
    package var author: String { fhirUser ?? (isClient ? "client/\(subject)" : "user/\(subject)") }
}

/// `patient/DiagnosticReport.rs`, `user/Patient.cruds`, `system/*.rs` (SMART v2 grammar).
package struct SMARTScope: Sendable {
    package var context: String
    package var resource: String
    package var permissions: Set<Character>

    package init?(_ text: Substring) {
        guard let slash = text.firstIndex(of: "/"), let dot = text.lastIndex(of: ".") else { return nil }
        context = String(text[..<slash])
        guard ["patient", "user", "system"].contains(context) else { return nil }
        resource = String(text[text.index(after: slash)..<dot])
        // Parameters after `?` narrow a scope; MedLedger grants none of them, so such scopes count for nothing.
        let letters = text[text.index(after: dot)...]
        guard !letters.isEmpty, letters.allSatisfy({ "cruds".contains($0) }) else { return nil }
        permissions = Set(letters)
    }

    package func grants(_ interaction: Interaction, onResource name: String) -> Bool {
        (resource == "*" || resource == name) && permissions.contains(interaction.rawValue)
    }
}
