/// C2SP tlog-checkpoint body: origin, decimal tree size, base64 root hash, optional extension lines.
public struct Checkpoint: Sendable, Equatable {
    public var origin: String
    public var size: Int64
    public var rootHash: [UInt8]
    public var extensions: [String]

    public init(origin: String, size: Int64, rootHash: [UInt8], extensions: [String] = []) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
        self.extensions = extensions
    }

    public var body: String {
        ([origin, String(size), rootHash.base64String] + extensions).map { $0 + "\n" }.joined()
    }

    public static func parse(body: String) throws(NoteKeyError) -> Checkpoint {
        var lines = body.split(separator: "\n", omittingEmptySubsequences: false)
        guard body.hasSuffix("\n") else { throw NoteKeyError("checkpoint must end with a newline") }
        lines.removeLast()
        guard lines.count >= 3 else { throw NoteKeyError("checkpoint needs origin, size and root lines") }
        let sizeText = lines[1]
        guard let size = Int64(sizeText), size >= 0, String(size) == sizeText else {
            throw NoteKeyError("checkpoint size must be a decimal without leading zeros")
        }
        guard let root = Base64.decode(lines[2]), root.count == MerkleTree.hashSize else {
            throw NoteKeyError("checkpoint root must be a base64 SHA-256 hash")
        }
        guard !lines[0].isEmpty else { throw NoteKeyError("checkpoint origin is empty") }
        return Checkpoint(origin: String(lines[0]), size: size, rootHash: root, extensions: lines.dropFirst(3).map(String.init))
    }

    /// Parses and authenticates a signed checkpoint: the log's signature must verify and the
    /// origin must be the verifier key's name (C2SP tlog-checkpoint).
    public static func verified(note: String, verifier: NoteVerifier) throws(NoteKeyError) -> Checkpoint {
        let signed = try SignedNote.parse(note)
        try signed.verify(verifier)
        let checkpoint = try parse(body: signed.text)
        guard checkpoint.origin == verifier.name else {
            throw NoteKeyError("checkpoint origin \(checkpoint.origin) does not match the key name \(verifier.name)")
        }
        return checkpoint
    }
}
