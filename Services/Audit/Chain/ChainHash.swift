import Crypto

/// The link of the audit chain: each event's hash is SHA3-256(previous hash ‖ the RFC 8785
/// bytes of the stored AuditEvent), the first one's previous hash 32 zero bytes.
enum ChainHash {
    static let size = 32
    static let genesis = [UInt8](repeating: 0, count: size)

    static func next(_ previous: [UInt8], _ text: [UInt8]) -> [UInt8] {
        var hasher = SHA3_256()
        hasher.update(data: previous)
        hasher.update(data: text)
        return Array(hasher.finalize())
    }
}
