import MedLedgerCore

/// An entry ready to sequence: validated, canonicalised and hashed by the request handler, so
/// the sequencer's critical section only assigns indices and writes.
struct PreparedEntry: Sendable {
    var idempotencyKey: String
    var data: [UInt8]
    var leafHash: [UInt8]

    init(idempotencyKey: String, data: [UInt8]) {
        self.idempotencyKey = idempotencyKey
        self.data = data
        self.leafHash = MerkleTree.leafHash(data)
    }
}
