import Foundation

/// c2sp.org/tlog-proof@v1: an offline-verifiable inclusion proof with its checkpoint.
public struct TlogProof: Sendable, Equatable {
    public static let header = "c2sp.org/tlog-proof@v1"

    public var extra: [UInt8]?
    public var index: Int64
    public var hashes: [[UInt8]]
    /// The signed checkpoint note, verbatim.
    public var checkpoint: String

    public init(extra: [UInt8]? = nil, index: Int64, hashes: [[UInt8]], checkpoint: String) {
        self.extra = extra
        self.index = index
        self.hashes = hashes
        self.checkpoint = checkpoint
    }

    public var formatted: String {
        var out = TlogProof.header + "\n"
        if let extra { out += "extra \(extra.base64String)\n" }
        out += "index \(index)\n"
        for hash in hashes { out += hash.base64String + "\n" }
        return out + "\n" + checkpoint
    }

    public static func parse(_ text: String) throws(ProofError) -> TlogProof {
        guard let split = text.range(of: "\n\n") else { throw ProofError("malformed tlog-proof: no checkpoint") }
        var lines = text[..<split.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)[...]
        guard lines.popFirst() == Substring(header) else { throw ProofError("not a \(header) proof") }
        var extra: [UInt8]?
        if let line = lines.first, line.hasPrefix("extra ") {
            guard let bytes = Base64.decode(line.dropFirst(6)) else { throw ProofError("malformed extra line") }
            extra = bytes
            lines.removeFirst()
        }
        guard let indexLine = lines.popFirst(), indexLine.hasPrefix("index "),
            let index = Int64(indexLine.dropFirst(6)), index >= 0, String(index) == indexLine.dropFirst(6)
        else { throw ProofError("malformed index line") }
        var hashes: [[UInt8]] = []
        for line in lines {
            guard let hash = Base64.decode(line), hash.count == MerkleTree.hashSize else { throw ProofError("malformed proof hash") }
            hashes.append(hash)
        }
        return TlogProof(extra: extra, index: index, hashes: hashes, checkpoint: String(text[split.upperBound...]))
    }

    /// Verifies the checkpoint's signature and origin, then the inclusion of `leafData`.
    @discardableResult
    public func verify(leafData: [UInt8], verifier: NoteVerifier) throws(ProofError) -> Checkpoint {
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.verified(note: self.checkpoint, verifier: verifier)
        } catch {
            throw ProofError("checkpoint: \(error.message)")
        }
        try MerkleProofVerifier.verifyInclusion(
            index: index,
            size: checkpoint.size,
            leafHash: MerkleTree.leafHash(leafData),
            proof: hashes,
            root: checkpoint.rootHash
        )
        return checkpoint
    }
}
