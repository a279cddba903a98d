import Logging
import MedLedgerCore
import PostgresNIO
import ServiceLifecycle

/// The one writer of the chain in this process, with group commit (`GroupCommitQueue`):
/// requests queue their events; each batch is appended in one transaction, and the next starts
/// the moment the previous one committed. Each request is answered once its rows are durable.
/// Records audits every read, so many small concurrent requests share a few transactions
/// instead of each taking the chain lock.
///
/// Several audit processes may share a database: each transaction locks the head row first
/// (`SELECT … FOR UPDATE`), so appends are serialised across processes and each starts from
/// the head the previous one left.
struct ChainWriter: Service {
    let postgres: PostgresClient
    let logger: Logger
    private let queue: GroupCommitQueue<PreparedEvent, ChainReceipt>

    init(postgres: PostgresClient, batchLimit: Int, logger: Logger) {
        self.postgres = postgres
        self.logger = logger
        queue = GroupCommitQueue(batchLimit: batchLimit, what: "events", shutdownMessage: "audit is shutting down")
    }

    /// Appends the events (in order) and returns where each is, once committed.
    func submit(_ events: [PreparedEvent]) async throws -> [ChainReceipt] {
        try await queue.submit(events)
    }

    func run() async throws {
        await queue.run(logger: logger) { events in try await append(events) }
    }

    /// One transaction: lock the head, answer known keys with their seq, number, stamp and hash
    /// the new events from the head on, write them and move the head.
    private func append(_ events: [PreparedEvent]) async throws -> [ChainReceipt] {
        try await Database.transaction(postgres, logger: logger) { connection in
            var head = try await ChainStore.lockHead(on: connection, logger: logger)
            var assigned = try await ChainStore.storedKeys(Array(Set(events.map(\.idempotencyKey))), on: connection, logger: logger)
            // After the lock: across processes, later seqs get later (or equal) times.
            let lastUpdated = FHIRDate.instantText(ResourceStamp.now())
            var receipts: [ChainReceipt] = []
            var rows: [ChainStore.Row] = []
            receipts.reserveCapacity(events.count)
            rows.reserveCapacity(events.count)
            for event in events {
                if let seq = assigned[event.idempotencyKey] {
                    receipts.append(ChainReceipt(seq: seq, duplicate: true))
                    continue
                }
                let seq = head.seq + 1
                let text = event.template.text(id: String(seq), lastUpdated: lastUpdated)
                head = ChainStore.Head(seq: seq, hash: ChainHash.next(head.hash, text))
                assigned[event.idempotencyKey] = seq
                receipts.append(ChainReceipt(seq: seq, duplicate: false))
                rows.append(ChainStore.Row(seq: seq, key: event.idempotencyKey, text: text, hash: head.hash, index: event.index))
            }
            try await ChainStore.append(rows, on: connection, logger: logger)
            return receipts
        }
    }
}
