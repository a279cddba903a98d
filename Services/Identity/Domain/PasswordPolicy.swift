import HTTPTypes
import MedLedgerCore

/// The password rules (documented in openapi/identity.yaml). Violations are 422s that say which
/// rule failed; the password itself never appears in a message or a log line.
enum PasswordPolicy {
    static let minimumLength = 12
    /// bcrypt reads at most 72 bytes; longer passwords would be silently truncated.
    static let maximumBytes = 72
    /// Long passphrases need no character mix.
    static let passphraseLength = 20

    static func check(_ password: String, username: String) throws(Problem) {
        guard password.count >= minimumLength else {
            throw Problem(.unprocessableContent, "the password must have at least \(minimumLength) characters")
        }
        guard password.utf8.count <= maximumBytes else {
            throw Problem(.unprocessableContent, "the password must be at most \(maximumBytes) bytes (UTF-8)")
        }
        let lowered = password.lowercased()
        if !username.isEmpty, lowered.contains(username.lowercased()) {
            throw Problem(.unprocessableContent, "the password must not contain the username")
        }
        if password.count < passphraseLength {
            var classes = 0
            if password.contains(where: \.isLowercase) { classes += 1 }
            if password.contains(where: \.isUppercase) { classes += 1 }
            if password.contains(where: \.isNumber) { classes += 1 }
            if password.contains(where: { !$0.isLetter && !$0.isNumber }) { classes += 1 }
            guard classes >= 3 else {
                throw Problem(
                    .unprocessableContent,
                    "the password needs three of: lower case, upper case, digits, other characters (or at least \(passphraseLength) characters)"
                )
            }
        }
        let distinct = Set(password).count
        guard distinct >= 5, !commonPasswords.contains(where: { lowered.contains($0) }) else {
            throw Problem(.unprocessableContent, "the password is too common or too repetitive")
        }
    }

    /// Fragments that make a password guessable whatever surrounds them.
    static let commonPasswords = [
        "password", "passw0rd", "123456", "qwerty", "letmein", "welcome", "iloveyou", "admin", "medledger", "abc123", "monkey",
        "dragon", "sunshine", "princess", "football", "baseball", "master", "hospital", "changeme",
    ]
}

/// Login names: lower case, so `Alice` and `alice` are one account.
enum Username {
    static func validate(_ username: String) throws(Problem) {
        let allowed = username.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || [UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "@"), UInt8(ascii: "-")].contains(byte)
        }
        guard (3...64).contains(username.utf8.count), allowed else {
            throw Problem(.unprocessableContent, "the username must be 3 to 64 characters of a-z, 0-9, '.', '_', '@', '-'")
        }
    }
}
