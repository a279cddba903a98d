import Crypto
import MedLedgerCore

/// What a write stores to anchor one version (design guide, "Integrity and privacy of every
/// version"): the ledger entry it sends, and the salt sealed under the version's data key, so
/// that destroying the key also makes the salt (and with it the commitment) unrecoverable.
struct VersionAnchor: Sendable {
    var entry: LedgerEntry
    var salt: [UInt8]
    var sealedSalt: [UInt8]

    init(versionReference: String, salt: [UInt8], commitment: [UInt8], time: String, key: SymmetricKey) throws {
        self.salt = salt
        entry = LedgerEntry(commitment: commitment, ref: LedgerEntry.ref(salt: salt, versionReference: versionReference), time: time)
        sealedSalt = try ResourceCipher.seal(salt, key: key, context: Self.saltContext(versionReference))
    }

    /// The ledger deduplicates retries by this key; the ref is unique per version (random salt)
    /// and reveals nothing the public entry does not.
    var idempotencyKey: String { "records-" + entry.ref.hexString }

    static func saltContext(_ versionReference: String) -> String { versionReference + "#salt" }

    /// The bytes a resource version commits to: RFC 8785 of the stored resource. A number JSON
    /// allows but an IEEE double cannot hold (1e400) has no canonical form, so it cannot be stored.
    static func canonical(_ resource: JSONValue) throws(Problem) -> [UInt8] {
        do {
            return try resource.canonicalized()
        } catch {
            throw Problem.invalidResource([FHIRIssue(code: "invalid", diagnostics: "the resource has no RFC 8785 form: \(error.message)", expression: nil)])
        }
    }

    /// A logical deletion has no body; its version commits to the empty byte string.
    static let deletionBytes: [UInt8] = []
}
