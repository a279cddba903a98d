/// The check a service makes of every anchor, when it stores one and again when verifying: the
/// checkpoint is signed by the ledger (when its verifier key is configured) and the entry's
/// bytes are the leaf at `index` under that checkpoint's root.
public enum AnchorProof {
    public static func check(entry: [UInt8], index: Int64, proof: [[UInt8]], checkpoint note: String, verifier: NoteVerifier?) throws(ProofError) -> Checkpoint {
        let checkpoint: Checkpoint
        do {
            if let verifier {
                checkpoint = try Checkpoint.verified(note: note, verifier: verifier)
            } else {
                checkpoint = try Checkpoint.parse(body: SignedNote.parse(note).text)
            }
        } catch {
            throw ProofError("checkpoint: \(error.message)")
        }
        try MerkleProofVerifier.verifyInclusion(
            index: index, size: checkpoint.size, leafHash: MerkleTree.leafHash(entry), proof: proof, root: checkpoint.rootHash)
        return checkpoint
    }

    /// Inclusion hashes as stored: concatenated.
    public static func split(_ bytes: [UInt8]) -> [[UInt8]] {
        stride(from: 0, to: bytes.count, by: MerkleTree.hashSize).map { Array(bytes[$0..<min($0 + MerkleTree.hashSize, bytes.count)]) }
    }
}
