import MedLedgerCore

/// The chain heads the ledger holds: every `audit-chain-head` entry in its public entry
/// bundles, read when a verification starts. Audit's own anchor rows can be deleted or edited
/// by someone with access to its database; the ledger's entries cannot, so each is held
/// against the stored chain whether audit kept its row or not.
struct LedgerHeads: Sendable {
    struct Head: Sendable {
        var leaf: Int64
        var entry: ChainHeadEntry
        var bytes: [UInt8]
    }

    /// The tree size scanned.
    var treeSize: Int64 = 0
    /// Heads of sizes in the verified range, in size order.
    private(set) var inRange: [Head] = []
    /// The same, by leaf index (to confirm audit's anchor rows).
    private(set) var byLeaf: [Int64: Head] = [:]
    /// The largest size anchored at all (events beyond the stored chain were deleted).
    private(set) var largest: Head?

    /// Scans the ledger; keeps the heads of sizes in `range` (with others only the largest).
    static func read(_ scan: LedgerEntryScan, range: ClosedRange<Int64>) async throws -> LedgerHeads {
        var heads = LedgerHeads()
        heads.treeSize = try await scan.treeSize()
        // Canonical chain heads begin so ({"head":…, keys sorted}); version entries do not.
        let prefix = Array(#"{"head":"#.utf8)
        try await scan.forEachBundle(upTo: heads.treeSize) { firstLeaf, entries in
            for (offset, bytes) in entries.enumerated() where bytes.starts(with: prefix) {
                guard let value = try? JSONParser.parse(bytes), let entry = ChainHeadEntry(value) else { continue }
                let head = Head(leaf: firstLeaf + Int64(offset), entry: entry, bytes: bytes)
                if entry.size > heads.largest?.entry.size ?? 0 { heads.largest = head }
                if range.contains(entry.size) {
                    heads.inRange.append(head)
                    heads.byLeaf[head.leaf] = head
                }
            }
        }
        heads.inRange.sort { $0.entry.size < $1.entry.size }
        return heads
    }
}
