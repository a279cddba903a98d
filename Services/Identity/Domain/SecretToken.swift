import Crypto
import MedLedgerCore

/// 256-bit random secrets (refresh tokens, client secrets) and their stored form, SHA-256: they
/// carry full entropy, so a fast hash suffices (bcrypt is for low-entropy passwords).
enum SecretToken {
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }.base64URLString
    }

    static func hash(_ secret: String) -> [UInt8] { Array(SHA256.hash(data: Array(secret.utf8))) }

    /// Compares without an early exit, so timing does not reveal how much of a hash matched.
    static func matches(_ secret: String, hash: [UInt8]) -> Bool {
        let candidate = Self.hash(secret)
        guard candidate.count == hash.count else { return false }
        return zip(candidate, hash).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
