import Crypto

/// C2SP signed-note keys (Ed25519, algorithm byte 0x01), in the text formats Go's
/// golang.org/x/mod/sumdb/note reads and writes:
/// verifier `name+hexkeyid+base64(0x01‖pub)`, signer `PRIVATE+KEY+name+hexkeyid+base64(0x01‖seed)`.
public struct NoteKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

enum NoteKey {
    static let ed25519Algorithm: UInt8 = 0x01

    /// Key ID: the first 4 bytes of SHA-256(name ‖ "\n" ‖ alg ‖ public key), big-endian.
    static func keyID(name: String, publicKey: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array(name.utf8))
        hasher.update(data: [0x0A, ed25519Algorithm])
        hasher.update(data: publicKey)
        return Array(Array(hasher.finalize()).prefix(4))
    }

    /// Names are non-empty and free of whitespace and '+' (the separators of the key formats).
    static func checkName(_ name: String) throws(NoteKeyError) {
        guard !name.isEmpty, !name.contains("+"), !name.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 })
        else { throw NoteKeyError("invalid key name \"\(name)\"") }
    }
}

public struct NoteVerifier: Sendable {
    public let name: String
    public let keyID: [UInt8]
    let publicKey: Curve25519.Signing.PublicKey

    public init(vkey: String) throws(NoteKeyError) {
        // The base64 key may itself contain '+': split on the first two separators only, as Go's note does.
        let parts = vkey.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw NoteKeyError("a verifier key has the form name+keyid+key") }
        let name = String(parts[0])
        try NoteKey.checkName(name)
        guard parts[1].count == 8, let id = Hex.decode(parts[1]) else { throw NoteKeyError("the key id must be 8 hex digits") }
        guard let key = Base64.decode(parts[2]), key.count == 33, key[0] == NoteKey.ed25519Algorithm else {
            throw NoteKeyError("only Ed25519 verifier keys (algorithm 1) are supported")
        }
        let raw = Array(key.dropFirst())
        guard NoteKey.keyID(name: name, publicKey: raw) == id else { throw NoteKeyError("the key id does not match the key") }
        guard let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
            throw NoteKeyError("invalid Ed25519 public key")
        }
        self.init(name: name, keyID: id, publicKey: publicKey)
    }

    init(name: String, keyID: [UInt8], publicKey: Curve25519.Signing.PublicKey) {
        self.name = name
        self.keyID = keyID
        self.publicKey = publicKey
    }

    public var vkey: String {
        let raw = Array(publicKey.rawRepresentation)
        return "\(name)+\(keyID.hexString)+\(([NoteKey.ed25519Algorithm] + raw).base64String)"
    }

    func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        publicKey.isValidSignature(signature, for: message)
    }
}

public struct NoteSigner: Sendable {
    public let name: String
    public let keyID: [UInt8]
    let privateKey: Curve25519.Signing.PrivateKey

    public init(skey: String) throws(NoteKeyError) {
        let parts = skey.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY" else {
            throw NoteKeyError("a signer key has the form PRIVATE+KEY+name+keyid+key")
        }
        let name = String(parts[2])
        try NoteKey.checkName(name)
        guard parts[3].count == 8, let id = Hex.decode(parts[3]) else { throw NoteKeyError("the key id must be 8 hex digits") }
        guard let key = Base64.decode(parts[4]), key.count == 33, key[0] == NoteKey.ed25519Algorithm,
            let privateKey = try? Curve25519.Signing.PrivateKey(rawRepresentation: key.dropFirst())
        else { throw NoteKeyError("only Ed25519 signer keys (algorithm 1) are supported") }
        guard NoteKey.keyID(name: name, publicKey: Array(privateKey.publicKey.rawRepresentation)) == id else {
            throw NoteKeyError("the key id does not match the key")
        }
        self.name = name
        self.keyID = id
        self.privateKey = privateKey
    }

    public static func generate(name: String) throws(NoteKeyError) -> NoteSigner {
        try NoteKey.checkName(name)
        let key = Curve25519.Signing.PrivateKey()
        let id = NoteKey.keyID(name: name, publicKey: Array(key.publicKey.rawRepresentation))
        return try NoteSigner(skey: "PRIVATE+KEY+\(name)+\(id.hexString)+\(([NoteKey.ed25519Algorithm] + Array(key.rawRepresentation)).base64String)")
    }

    public var skey: String {
        "PRIVATE+KEY+\(name)+\(keyID.hexString)+\(([NoteKey.ed25519Algorithm] + Array(privateKey.rawRepresentation)).base64String)"
    }

    public var verifier: NoteVerifier {
        NoteVerifier(name: name, keyID: keyID, publicKey: privateKey.publicKey)
    }

    func signature(for message: [UInt8]) -> [UInt8] {
        // Ed25519 signing of bytes in memory cannot fail.
        Array(try! privateKey.signature(for: message))
    }
}
