import HummingbirdBcrypt
import NIOPosix

/// bcrypt on NIO's thread pool, never on an event loop (a hash takes ~0.25 s at cost 12).
struct PasswordHasher: Sendable {
    let cost: Int
    /// Verified against when the account does not exist, so that answering takes as long as
    /// for a real account and timing does not reveal which usernames exist.
    let decoyHash: String

    init(cost: Int) {
        self.cost = cost
        decoyHash = Bcrypt.hash("decoy password for timing", cost: UInt8(cost))
    }

    func hash(_ password: String) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: UInt8(cost)) }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }
}
