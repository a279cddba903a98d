import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// Password logins: throttled per source address, locked per account after repeated failures,
/// audited either way. Every failure looks the same to the caller, so the answer never tells
/// whether an account exists, is disabled or is locked.
struct LoginService: Sendable {
    /// Transactions that write audit events: delivery starts once they commit.
    let outboxes: OutboxTransactions
    let users: UserStore
    let sessions: SessionStore
    let throttle: LoginThrottle
    let hasher: PasswordHasher
    let lockoutThreshold: Int
    let lockoutSeconds: Int

    enum Failure: Error {
        case invalidCredentials
        case throttled(retryAfter: Int)
    }

    struct Success: Sendable {
        var user: UserRecord
        var session: UUID
        var refreshToken: String
    }

    func login(username rawUsername: String, password: String, address: String, logger: Logger) async throws -> Success {
        if let wait = await throttle.retryAfter(address) { throw Failure.throttled(retryAfter: wait) }
        let username = rawUsername.lowercased()
        // A name no account can have is not looked up (it may hold what the database refuses, e.g. NUL).
        let canExist = (try? Username.validate(username)) != nil
        guard canExist, let user = try await users.find(username: username, logger: logger) else {
            _ = try await hasher.verify(password, hash: hasher.decoyHash)
            try await fail(nil, username: username, address: address, why: "unknown account", logger: logger)
        }
        let passwordMatches = try await hasher.verify(password, hash: user.passwordHash)
        guard passwordMatches, !user.disabled, !user.isLocked else {
            let why = user.disabled ? "account disabled" : user.isLocked ? "account locked" : "wrong password"
            try await fail(user, username: username, address: address, why: why, countsTowardsLockout: !passwordMatches, logger: logger)
        }
        let opened = try await outboxes.transaction(logger: logger) { connection -> Success? in
            guard let current = try await UserStore.recordSuccess(user.id, on: connection, logger: logger) else { return nil }
            let (session, refresh) = try await sessions.open(userID: user.id, address: address, on: connection, logger: logger)
            var event = IdentityAuditEvent(kind: .login, agent: .user(current, address: address))
            event.sessionID = session
            try await event.row.insert(on: connection, logger: logger)
            return Success(user: current, session: session, refreshToken: refresh)
        }
        guard let opened else {
            try await fail(user, username: username, address: address, why: "account locked or disabled meanwhile", countsTowardsLockout: false, logger: logger)
        }
        return opened
    }

    /// Records the failure (audit, throttle, lockout count) and throws.
    private func fail(
        _ user: UserRecord?, username: String, address: String, why: String, countsTowardsLockout: Bool = false, logger: Logger
    ) async throws -> Never {
        try await recordFailure(user, username: username, address: address, why: why, countsTowardsLockout: countsTowardsLockout, logger: logger)
        throw Failure.invalidCredentials
    }

    /// A wrong password, also when changing one's own password: audited, throttled, counted.
    func recordFailure(_ user: UserRecord?, username: String, address: String, why: String, countsTowardsLockout: Bool, logger: Logger) async throws {
        await throttle.recordFailure(address)
        try await outboxes.transaction(logger: logger) { connection in
            let agent = user.map { AuditAgent.user($0, address: address) } ?? AuditAgent(username: username, address: address)
            var event = IdentityAuditEvent(kind: .loginFailed, outcome: .minorFailure, agent: agent)
            event.detail = "login failed: \(why)"
            try await event.row.insert(on: connection, logger: logger)
            if let user, countsTowardsLockout,
                try await UserStore.recordFailure(user.id, threshold: lockoutThreshold, lockSeconds: lockoutSeconds, on: connection, logger: logger)
            {
                var lockout = IdentityAuditEvent(kind: .lockout, outcome: .seriousFailure, agent: agent)
                lockout.detail = "account locked for \(lockoutSeconds) s after \(lockoutThreshold) failed logins"
                try await lockout.row.insert(on: connection, logger: logger)
                logger.notice("account locked", metadata: ["user": "\(user.id)"])
            }
        }
    }
}
