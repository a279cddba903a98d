import Logging
import MedLedgerCore
import PostgresNIO
import ServiceLifecycle

/// Anchors the chain head in the ledger every `interval` when it moved past the last anchor
/// (design guide: "anchored in the ledger periodically"). The append goes through
/// `LedgerAppend`, which checks the ledger's proof before anything is stored. Several audit
/// processes may anchor the same size: the ledger dedupes by the idempotency key and the anchor
/// row is stored once. A failure is retried at the next tick and logged once per outage.
struct ChainAnchoring: Service {
    let postgres: PostgresClient
    let ledger: LedgerAppend
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown { try await tick() }
    }

    private func tick() async throws {
        var failing = false
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            do {
                try await anchorHead()
                if failing { logger.info("anchoring the audit chain works again") }
                failing = false
            } catch where !Task.isCancelled {
                // Logged once per outage, not once per tick.
                if !failing { logger.warning("anchoring the audit chain failed; retrying every tick", metadata: ["error": "\(error)"]) }
                failing = true
            }
        }
    }

    /// Anchors the current head if it moved past the last anchor.
    func anchorHead() async throws {
        let (head, lastAnchored) = try await AnchorStore.headAndLastAnchor(postgres, logger: logger)
        guard head.seq > lastAnchored else { return }
        let entry = ChainHeadEntry(size: head.seq, head: head.hash)
        let answer = try await ledger.append(
            [LedgerAppend.Pending(key: entry.idempotencyKey, entry: String(decoding: entry.canonical, as: UTF8.self))],
            logger: logger
        )
        let anchor = AnchorStore.Anchor(
            entry: entry,
            leafIndex: answer.indices[0],
            checkpointSize: answer.size,
            checkpoint: answer.note,
            proof: answer.proofs[0]
        )
        try await AnchorStore.insert(anchor, postgres, logger: logger)
        logger.debug("audit chain anchored", metadata: ["size": "\(entry.size)", "leaf": "\(anchor.leafIndex)"])
    }
}
