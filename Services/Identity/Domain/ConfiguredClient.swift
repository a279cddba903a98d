import Foundation
import MedLedgerCore

/// An OAuth client from `IDENTITY_CLIENTS` (`id:secret:role:scope scope…`, clients separated by
/// commas or newlines): how the local stack and compose register one client per service.
struct ConfiguredClient: Sendable {
    var id: String
    var secret: String
    var role: Role
    var scopes: [String]

    static func parseList(_ text: String, production: Bool) throws(ConfigError) -> [ConfiguredClient] {
        var clients: [ConfiguredClient] = []
        for item in text.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let item = item.trimmingCharacters(in: .whitespaces)
            guard !item.isEmpty else { continue }
            let fields = item.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4 else {
                throw ConfigError("IDENTITY_CLIENTS: each client is id:secret:role:scopes, got \(fields.count) fields for \"\(fields[0])\"")
            }
            let (id, secret, roleName) = (fields[0], fields[1], fields[2])
            do {
                try ClientRules.validateID(id)
            } catch {
                throw ConfigError("IDENTITY_CLIENTS: \(error.detail ?? "")")
            }
            guard secret.count >= 32 || !production, !secret.isEmpty else {
                throw ConfigError("IDENTITY_CLIENTS: the secret of \(id) is too short (use 32 random bytes, base64url)")
            }
            guard let role = Role(rawValue: roleName), role.isClientRole else {
                throw ConfigError("IDENTITY_CLIENTS: the role of \(id) must be service or system, not \"\(roleName)\"")
            }
            let scopes = fields[3].split(separator: " ").map(String.init)
            do {
                try ClientRules.validateScopes(scopes, role: role)
            } catch {
                throw ConfigError("IDENTITY_CLIENTS: client \(id): \(error.detail ?? "")")
            }
            guard !clients.contains(where: { $0.id == id }) else { throw ConfigError("IDENTITY_CLIENTS: client \(id) is listed twice") }
            clients.append(ConfiguredClient(id: id, secret: secret, role: role, scopes: scopes))
        }
        return clients
    }
}

extension ConfiguredClient: CustomStringConvertible {
    /// Never the secret.
    var description: String { "\(id) (\(role.rawValue): \(scopes.joined(separator: " ")))" }
}
