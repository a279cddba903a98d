import Logging
import MedLedgerCore
import PostgresNIO

/// `GET /chain/verify`: recomputes the chain over `from…to` a chunk at a time and holds it
/// against its anchors. Each link is checked against the stored hash before it, so one edited,
/// deleted or moved event shows as a problem where it happened rather than breaking every later
/// link. An edit whose later hashes were all recomputed passes the links but contradicts the
/// next anchor: the heads the ledger holds are read from the ledger itself, so deleting
/// audit's anchor rows hides nothing.
struct ChainVerification: Sendable {
    static let chunkSize = 1000

    let postgres: PostgresClient
    let ledger: LedgerEntryScan
    let ledgerVerifier: NoteVerifier?

    /// `to` nil: up to the last stored event.
    func verify(from: Int64, to requested: Int64?, logger: Logger) async throws -> ChainReport {
        if let requested, requested < from { throw Problem.badRequest("from (\(from)) must not be greater than to (\(requested))") }
        // The ledger first: every head it holds then was anchored from events committed before
        // the chain's end is read below.
        var heads: LedgerHeads?
        var unreachable: String?
        do {
            heads = try await LedgerHeads.read(ledger, range: from...(requested ?? Int64.max))
        } catch {
            unreachable = "the ledger's entries could not be read: \(error)"
        }
        return try await postgres.withConnection { connection in
            let end = try await ChainReads.end(on: connection, logger: logger)
            let to = requested ?? end.lastSeq
            // An empty chain verifies as empty; a start beyond a non-empty one is a mistake.
            if to < from, from > 1 { throw Problem.badRequest("from (\(from)) is beyond the last stored event (\(end.lastSeq))") }
            var report = ChainReport(from: from, to: to)
            report.ledgerUnreachable = unreachable
            report.ledgerTreeSize = heads?.treeSize
            var previous: [UInt8]? = ChainHash.genesis
            if from > 1 {
                previous = try await ChainReads.hash(at: from - 1, on: connection, logger: logger)
                if previous == nil { report.add(from - 1, "the event before the range is missing, so the first link cannot be checked") }
            }
            var ledgerHeads = heads?.inRange[...] ?? []
            var cursor = from
            var expected = from
            while cursor <= to {
                let rows = try await ChainReads.rows(from: cursor, to: to, limit: Self.chunkSize, on: connection, logger: logger)
                // The last chunk's anchors reach `to`: anchored events missing at the end are found too.
                let chunkEnd = rows.count < Self.chunkSize ? to : rows[rows.count - 1].seq
                var anchors = Anchors(stored: try await AnchorStore.anchors(in: cursor...chunkEnd, on: connection, logger: logger))
                while let next = ledgerHeads.first, next.entry.size <= chunkEnd { anchors.ledger.append(ledgerHeads.removeFirst()) }
                let anchored = anchors.sizes
                for row in rows {
                    if row.seq > expected {
                        report.add(expected, Self.missing(expected, row.seq - 1))
                        // The link over a gap cannot hold; the gap is the one problem to report.
                        previous = nil
                    }
                    Self.check(row, after: previous, into: &report)
                    previous = row.hash
                    expected = row.seq + 1
                    report.checked += 1
                    report.head = row.hash
                    if anchored.contains(row.seq) { anchors.storedHashes[row.seq] = row.hash }
                }
                for size in anchored.sorted() { check(anchors, at: size, ledgerTreeSize: heads?.treeSize, into: &report) }
                // `to` may be as large as Int64 allows: stop before stepping past it.
                if chunkEnd >= to { break }
                cursor = chunkEnd + 1
            }
            if expected <= to { report.add(expected, Self.missing(expected, to)) }
            if to >= end.lastSeq { try await checkTail(end, to: to, ledgerLargest: heads?.largest, on: connection, logger: logger, into: &report) }
            return report
        }
    }

    /// The anchors of one chunk: audit's rows, the ledger's heads, and the stored hashes at their sizes.
    private struct Anchors {
        var stored: [AnchorStore.Anchor]
        var ledger: [LedgerHeads.Head] = []
        var storedHashes: [Int64: [UInt8]] = [:]

        var sizes: Set<Int64> { Set(stored.map(\.entry.size)).union(ledger.map(\.entry.size)) }
    }

    private static func missing(_ first: Int64, _ last: Int64) -> String {
        first == last ? "event \(first) is missing (deleted?)" : "events \(first) to \(last) are missing (deleted?)"
    }

    /// One link: the stored text is the RFC 8785 form of an AuditEvent whose id is its seq, and
    /// its hash chains from the stored hash before it.
    private static func check(_ row: ChainReads.Row, after previous: [UInt8]?, into report: inout ChainReport) {
        if let event = try? JSONParser.parse(row.text) {
            if (try? event.canonicalized()) != row.text { report.add(row.seq, "the stored event is not in RFC 8785 form (edited outside audit?)") }
            if event["id"] != .string(String(row.seq)) {
                let id = event["id"]?.stringValue.map { "id \($0)" } ?? "no id"
                report.add(row.seq, "the stored event has \(id): it was stored at another place in the chain (moved?)")
            }
        } else {
            report.add(row.seq, "the stored event is not JSON")
        }
        if let previous, row.hash != ChainHash.next(previous, row.text) {
            report.add(row.seq, "the hash does not match SHA3-256(previous hash ‖ event): this event or the hash was changed")
        }
    }

    /// The anchors of one size: the stored hash there is the head anchored (in audit's row and
    /// in the ledger); audit's row is proven by its stored inclusion proof under its stored
    /// checkpoint, and is the entry the ledger holds at its leaf.
    private func check(_ anchors: Anchors, at size: Int64, ledgerTreeSize: Int64?, into report: inout ChainReport) {
        report.anchorsChecked += 1
        report.lastAnchoredSeq = size
        let row = anchors.stored.first { $0.entry.size == size }
        if let stored = anchors.storedHashes[size] {
            if let row, row.entry.head != stored {
                report.add(
                    size,
                    "the stored hash differs from the head anchored in the ledger (leaf \(row.leafIndex)): an event up to here was changed"
                )
            } else if let held = anchors.ledger.first(where: { $0.entry.size == size && $0.entry.head != stored }) {
                report.add(size, "the stored hash differs from the head the ledger holds at leaf \(held.leaf): an event up to here was changed")
            }
        } else {
            report.add(size, "the anchored event \(size) is missing (deleted?)")
        }
        guard let row else { return }
        let entry = row.entry.canonical
        do {
            let checkpoint = try AnchorProof.check(
                entry: entry,
                index: row.leafIndex,
                proof: AnchorProof.split(row.proof),
                checkpoint: row.checkpoint,
                verifier: ledgerVerifier
            )
            if checkpoint.size != row.checkpointSize {
                report.add(size, "the anchor's checkpoint is for size \(checkpoint.size), not \(row.checkpointSize)")
            }
        } catch {
            report.add(size, "the anchor's inclusion proof does not verify: \(error.message)")
        }
        // An anchor stored after the ledger was read is confirmed next time.
        guard let ledgerTreeSize, row.leafIndex < ledgerTreeSize else { return }
        if anchors.ledger.first(where: { $0.leaf == row.leafIndex })?.bytes == entry {
            report.confirmedInLedger += 1
        } else {
            report.add(size, "the ledger's entry \(row.leafIndex) is not this anchor")
        }
    }

    /// When the range reaches the end: no anchor (in the ledger or in audit's rows) is beyond
    /// the last event, and the head row agrees with the last event.
    private func checkTail(
        _ end: ChainReads.End,
        to: Int64,
        ledgerLargest: LedgerHeads.Head?,
        on connection: PostgresConnection,
        logger: Logger,
        into report: inout ChainReport
    ) async throws {
        let stored = try await ChainReads.anchoredBeyond(to, on: connection, logger: logger)
        let held = ledgerLargest.map(\.entry.size).flatMap { $0 > to ? $0 : nil }
        if let size = [stored, held].compactMap({ $0 }).max() {
            report.add(size, "the chain was anchored at \(size) events but the stored chain ends at \(end.lastSeq): events were deleted at the end")
        }
        if end.head.seq != end.lastSeq || (end.lastSeq > 0 && end.head.hash != end.lastHash) {
            report.add(end.head.seq, "the chain head (event \(end.head.seq)) does not match the last stored event (\(end.lastSeq))")
        }
    }
}
