import Crypto
import Foundation
import MedLedgerCore

/// The key-encryption keys from `RECORDS_KEKS` (`kid:base64,…`): the active one wraps new data
/// keys; the others still unwrap keys wrapped before a rotation.
struct KeyEncryptionKeys: Sendable {
    var activeID: String
    var keys: [String: SymmetricKey]

    var active: SymmetricKey { keys[activeID]! }

    init(parsing text: String, active: String?) throws(ConfigError) {
        keys = [:]
        var order: [String] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.trimmingCharacters(in: .whitespaces).split(separator: ":", maxSplits: 1)
            guard parts.count == 2, Self.isValidID(parts[0]) else {
                throw ConfigError("RECORDS_KEKS: each key is `kid:base64` with a kid of 1–32 letters, digits, `-` or `_`")
            }
            guard let bytes = Base64.decode(parts[1]), bytes.count == 32 else {
                throw ConfigError("RECORDS_KEKS: key \(parts[0]) must be the base64 of 32 random bytes (`openssl rand -base64 32`)")
            }
            guard keys[String(parts[0])] == nil else { throw ConfigError("RECORDS_KEKS: key id \(parts[0]) appears twice") }
            keys[String(parts[0])] = SymmetricKey(data: bytes)
            order.append(String(parts[0]))
        }
        guard let first = order.first else { throw ConfigError("RECORDS_KEKS is empty") }
        activeID = active ?? first
        guard keys[activeID] != nil else { throw ConfigError("RECORDS_ACTIVE_KEK=\(activeID) is not one of the ids in RECORDS_KEKS") }
    }

    init(generatedFor id: String) {
        activeID = id
        keys = [id: SymmetricKey(size: .bits256)]
    }

    static func isValidID(_ id: some StringProtocol) -> Bool {
        (1...32).contains(id.utf8.count) && id.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "-" || $0 == "_" }
    }
}
