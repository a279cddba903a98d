public import Crypto

/// The ledger entry of one stored version (design guide, "Integrity and privacy of every
/// version"): `{"v": 1, "commitment", "ref", "time"}` in RFC 8785 form. Neither ids nor content
/// reach the public log: the commitment and the blinded ref are salted hashes, and only those
/// holding the version's salt can recompute them.
public struct LedgerEntry: Sendable, Equatable {
    public static let saltSize = 32

    public var commitment: [UInt8]
    public var ref: [UInt8]
    /// The version's `meta.lastUpdated`, verbatim.
    public var time: String

    public init(commitment: [UInt8], ref: [UInt8], time: String) {
        self.commitment = commitment
        self.ref = ref
        self.time = time
    }

    /// The entry of a version: commitment over its canonical bytes, ref over its versioned reference.
    public init(salt: [UInt8], canonical: [UInt8], versionReference: String, time: String) {
        self.init(commitment: Self.commitment(salt: salt, canonical: canonical), ref: Self.ref(salt: salt, versionReference: versionReference), time: time)
    }

    /// `SHA3-256(salt ‖ canonical bytes)`.
    public static func commitment(salt: [UInt8], canonical: some Sequence<UInt8>) -> [UInt8] {
        var hasher = CommitmentHasher(salt: salt)
        hasher.update(Array(canonical))
        return hasher.finalize()
    }

    /// `SHA3-256(salt ‖ "Type/id/_history/vid")`.
    public static func ref(salt: [UInt8], versionReference: String) -> [UInt8] {
        commitment(salt: salt, canonical: Array(versionReference.utf8))
    }

    public static func randomSalt() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    public var json: JSONValue {
        .object([
            ("v", .number("1")), ("commitment", .string(commitment.base64String)), ("ref", .string(ref.base64String)), ("time", .string(time)),
        ])
    }

    /// The leaf data: the RFC 8785 bytes of `json` (only strings and a small integer, so it cannot fail).
    public var canonical: [UInt8] { (try? json.canonicalized()) ?? [] }

    /// Reads an entry as stored in the log; nil when it is not a version entry of this shape.
    public init?(_ value: JSONValue) {
        guard case .object(let members) = value, members.count == 4, case .number(let v)? = value["v"], v == "1",
            let commitment = value["commitment"]?.stringValue.flatMap({ Base64.decode($0) }), commitment.count == 32,
            let ref = value["ref"]?.stringValue.flatMap({ Base64.decode($0) }), ref.count == 32,
            let time = value["time"]?.stringValue
        else { return nil }
        self.init(commitment: commitment, ref: ref, time: time)
    }
}

/// `SHA3-256(salt ‖ bytes)` fed in pieces, for content that streams (Binary uploads).
public struct CommitmentHasher: Sendable {
    private var hasher = SHA3_256()

    public init(salt: [UInt8]) {
        hasher.update(data: salt)
    }

    public mutating func update(_ bytes: [UInt8]) {
        hasher.update(data: bytes)
    }

    public mutating func update(bufferPointer: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bufferPointer)
    }

    public func finalize() -> [UInt8] { Array(hasher.finalize()) }
}
