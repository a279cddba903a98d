import HTTPTypes
import JWTKit
import MedLedgerCore

/// The FHIR interactions a SMART v2 scope grants, by their letter (`c r u d s`).
enum Interaction: Character, Sendable {
    case create = "c"
    case read = "r"
    case update = "u"
    case delete = "d"
    case search = "s"
}

/// Who is asking, from their verified access token.
struct Caller: Sendable {
    var role: Role
    /// `Practitioner/x`, `Patient/y`, or a client's `Organization/z`.
    var fhirUser: String?
    var subject: String
    var scopes: [SMARTScope]
    /// Every scope of the token, SMART or not (`medledger/…`).
    var grantedScopes: Set<String> = []
    /// An in-house EHR client that needs no patient consent.
    var trusted: Bool
    var address: String

    init(token: AccessToken, address: String) throws(Problem) {
        guard let role = Role(rawValue: token.role) else { throw Problem.forbidden("the token's role \(token.role) has no access to records") }
        self.role = role
        fhirUser = token.fhirUser
        subject = token.sub.value
        scopes = token.scope.split(separator: " ").compactMap(SMARTScope.init)
        trusted = token.trusted ?? false
        self.address = address
    }

    /// The id in `fhirUser` when it names a resource of `type` (a doctor's Practitioner id, a
    /// patient's Patient id).
    func fhirUserID(_ type: ResourceType) -> String? {
        guard let fhirUser, fhirUser.hasPrefix(type.rawValue + "/") else { return nil }
        let id = fhirUser.dropFirst(type.rawValue.count + 1)
        return id.isEmpty ? nil : String(id)
    }

    /// 403 unless some scope grants `interaction` on `type`.
    func require(_ interaction: Interaction, on type: ResourceType) throws(Problem) {
        try require(interaction, onResource: type.rawValue)
    }

    /// The same for a resource type by name (Provenance, which records derives rather than stores).
    func require(_ interaction: Interaction, onResource name: String) throws(Problem) {
        guard scopes.contains(where: { $0.grants(interaction, onResource: name) }) else {
            throw Problem.forbidden("your scopes do not allow \(interaction.verb) on \(name)")
        }
    }

    var isClient: Bool { role.isClientRole }
}

extension Caller {
    /// The caller of a request under BearerAuthMiddleware (401 without a token).
    init(context: ServiceRequestContext) throws(Problem) {
        guard let token = context.token else { throw Problem.unauthorized("a bearer token is required") }
        try self.init(token: token, address: context.clientAddress)
        grantedScopes = Set(token.scopes)
    }

    /// 403 unless the caller is an admin whose token carries `scope` (records' system operations).
    func requireAdmin(_ scope: String, for operation: String) throws(Problem) {
        guard role == .admin, grantedScopes.contains(scope) else { throw Problem.forbidden("\(operation) is for admins (scope \(scope))") }
    }
}

/// `patient/DiagnosticReport.rs`, `user/Patient.cruds`, `system/*.rs` (SMART v2 grammar).
struct SMARTScope: Sendable {
    var context: String
    var resource: String
    var permissions: Set<Character>

    init?(_ text: Substring) {
        guard let slash = text.firstIndex(of: "/"), let dot = text.lastIndex(of: ".") else { return nil }
        context = String(text[..<slash])
        guard ["patient", "user", "system"].contains(context) else { return nil }
        resource = String(text[text.index(after: slash)..<dot])
        // Parameters after `?` narrow a scope; records grants none of them, so such scopes count for nothing.
        let letters = text[text.index(after: dot)...]
        guard !letters.isEmpty, letters.allSatisfy({ "cruds".contains($0) }) else { return nil }
        permissions = Set(letters)
    }

    func grants(_ interaction: Interaction, on type: ResourceType) -> Bool {
        grants(interaction, onResource: type.rawValue)
    }

    func grants(_ interaction: Interaction, onResource name: String) -> Bool {
        (resource == "*" || resource == name) && permissions.contains(interaction.rawValue)
    }
}

extension Interaction {
    var verb: String {
        switch self {
        case .create: "create"
        case .read: "read"
        case .update: "update"
        case .delete: "delete"
        case .search: "search"
        }
    }
}
