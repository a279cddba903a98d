import JWTKit
import Foundation
import Hummingbird
import MedLedgerCore

/// The account behind a request to identity's own API. Tokens are checked by the Shared bearer
/// middleware; identity additionally knows its sessions and accounts, so a logged-out session,
/// a disabled account or an unchanged one-time password stops working here at once rather than
/// when the token expires.
struct CallerGuard: Sendable {
    let sessions: SessionStore

    struct Caller: Sendable {
        var user: UserRecord
        var session: UUID
    }

    func caller(_ context: ServiceRequestContext, forPasswordChange: Bool = false) async throws -> Caller {
        guard let token = context.token else { throw Problem.unauthorized("a bearer token is required") }
        guard let sid = token.sid.flatMap(UUID.init(uuidString:)), let role = Role(rawValue: token.role), !role.isClientRole else {
            throw Problem.forbidden("this endpoint is for user accounts, not clients")
        }
        guard let user = try await sessions.openSessionUser(sid, logger: context.logger), user.id.uuidString.lowercased() == token.sub.value,
            !user.disabled
        else {
            throw Problem.unauthorized("the session has ended; log in again")
        }
        if !forPasswordChange {
            if user.mustChangePassword {
                throw Problem.forbidden("change the one-time password first: POST /users/me/password")
            }
            if token.scopes == [Scope.changePassword] {
                throw Problem.forbidden("this token may only change the password; log in again for a full token")
            }
        }
        return Caller(user: user, session: sid)
    }
}
