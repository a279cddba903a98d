import Logging
import MedLedgerCore
import PostgresNIO

/// `GET /chain/verify`: recomputes the chain over `from…to` a chunk at a time and checks every
/// anchor in range against the ledger. Each link is checked against the stored hash before it,
/// so one edited, deleted or moved event shows as a problem where it happened rather than
/// breaking every later link. An edit whose later hashes were all recomputed passes the links,
/// but contradicts the next anchor: the ledger holds the head as it was.
struct ChainVerification: Sendable {
    static let chunkSize = 1000

    let postgres: PostgresClient
    let ledger: LedgerEntryReader
    let ledgerVerifier: NoteVerifier?

    /// `to` nil: up to the last stored event.
    func verify(from: Int64, to requested: Int64?, logger: Logger) async throws -> ChainReport {
        try await postgres.withConnection { connection in
            let end = try await ChainReads.end(on: connection, logger: logger)
            let to = requested ?? end.lastSeq
            if to < from {
                if let requested { throw Problem.badRequest("from (\(from)) must not be greater than to (\(requested))") }
                // An empty chain verifies as empty; a start beyond a non-empty one is a mistake.
                if from > 1 { throw Problem.badRequest("from (\(from)) is beyond the last stored event (\(end.lastSeq))") }
            }
            var report = ChainReport(from: from, to: to)
            var previous: [UInt8]? = ChainHash.genesis
            if from > 1 {
                previous = try await ChainReads.hash(at: from - 1, on: connection, logger: logger)
                if previous == nil { report.add(from - 1, "the event before the range is missing, so the first link cannot be checked") }
            }
            var cursor = from
            var expected = from
            while cursor <= to {
                let rows = try await ChainReads.rows(from: cursor, to: to, limit: Self.chunkSize, on: connection, logger: logger)
                // The last chunk's anchors reach `to`: anchored events missing at the end are found too.
                let chunkEnd = rows.count < Self.chunkSize ? to : rows[rows.count - 1].seq
                let anchors = try await AnchorStore.anchors(in: cursor...chunkEnd, on: connection, logger: logger)
                var anchoredHashes: [Int64: [UInt8]] = [:]
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
                    if anchors.contains(where: { $0.entry.size == row.seq }) { anchoredHashes[row.seq] = row.hash }
                }
                for anchor in anchors { await check(anchor, storedHash: anchoredHashes[anchor.entry.size], into: &report) }
                // `to` may be as large as Int64 allows: stop before stepping past it.
                if chunkEnd >= to { break }
                cursor = chunkEnd + 1
            }
            if expected <= to { report.add(expected, Self.missing(expected, to)) }
            if to >= end.lastSeq { try await checkTail(end, to: to, on: connection, logger: logger, into: &report) }
            return report
        }
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

    /// An anchor: the stored hash at its size is the anchored head, its inclusion proof verifies
    /// under its stored checkpoint, and the ledger holds its entry.
    private func check(_ anchor: AnchorStore.Anchor, storedHash: [UInt8]?, into report: inout ChainReport) async {
        let seq = anchor.entry.size
        report.anchorsChecked += 1
        report.lastAnchoredSeq = seq
        if let storedHash, storedHash != anchor.entry.head {
            report.add(
                seq,
                "the stored hash differs from the head anchored in the ledger (leaf \(anchor.leafIndex)): an event up to here was changed"
            )
        } else if storedHash == nil {
            report.add(seq, "the anchored event is missing (deleted?)")
        }
        let entry = anchor.entry.canonical
        do {
            let checkpoint = try AnchorProof.check(
                entry: entry,
                index: anchor.leafIndex,
                proof: AnchorProof.split(anchor.proof),
                checkpoint: anchor.checkpoint,
                verifier: ledgerVerifier
            )
            if checkpoint.size != anchor.checkpointSize {
                report.add(seq, "the anchor's checkpoint is for size \(checkpoint.size), not \(anchor.checkpointSize)")
            }
        } catch {
            report.add(seq, "the anchor's inclusion proof does not verify: \(error.message)")
        }
        guard report.ledgerUnreachable == nil else { return }
        do {
            switch try await ledger.entry(anchor.leafIndex) {
            case entry?: report.confirmedInLedger += 1
            case _?: report.add(seq, "the ledger's entry \(anchor.leafIndex) is not this anchor")
            case nil: report.add(seq, "the ledger has no entry \(anchor.leafIndex)")
            }
        } catch {
            report.ledgerUnreachable = "GET entries/\(anchor.leafIndex) failed: \(error)"
        }
    }

    /// When the range reaches the end: no anchor is beyond the last event, and the head row
    /// agrees with the last event.
    private func checkTail(
        _ end: ChainReads.End,
        to: Int64,
        on connection: PostgresConnection,
        logger: Logger,
        into report: inout ChainReport
    ) async throws {
        if let size = try await ChainReads.anchoredBeyond(to, on: connection, logger: logger) {
            report.add(
                size,
                "the ledger anchors a chain of \(size) events but the stored chain ends at \(end.lastSeq): events were deleted at the end"
            )
        }
        if end.head.seq != end.lastSeq || (end.lastSeq > 0 && end.head.hash != end.lastHash) {
            report.add(end.head.seq, "the chain head (event \(end.head.seq)) does not match the last stored event (\(end.lastSeq))")
        }
    }
}
