import HTTPTypes
import Logging
import MedLedgerCore
import PostgresNIO
import ServiceLifecycle

/// The one writer of the chain in this process, with group commit: requests queue their events;
/// one loop takes everything queued (up to `batchLimit` events) and appends it in one
/// transaction, and the next batch starts the moment the previous one committed. Each request
/// is answered once its rows are durable. Records audits every read, so many small concurrent
/// requests share a few transactions instead of each taking the chain lock.
///
/// Several audit processes may share a database: each transaction locks the head row first
/// (`SELECT … FOR UPDATE`), so appends are serialised across processes and each starts from
/// the head the previous one left.
actor ChainWriter: Service {
    private struct Submission {
        var events: [PreparedEvent]
        var continuation: CheckedContinuation<[ChainReceipt], any Error>
    }

    let postgres: PostgresClient
    let batchLimit: Int
    let logger: Logger
    private var pending: [Submission] = []
    private var accepting = true
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(postgres: PostgresClient, batchLimit: Int, logger: Logger) {
        self.postgres = postgres
        self.batchLimit = batchLimit
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Appends the events (in order) and returns where each is, once committed.
    func submit(_ events: [PreparedEvent]) async throws -> [ChainReceipt] {
        guard accepting else { throw Self.unavailable("audit is shutting down") }
        return try await withCheckedThrowingContinuation { continuation in
            pending.append(Submission(events: events, continuation: continuation))
            wake.yield()
        }
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in wakeups {
                while !pending.isEmpty {
                    await writeNextBatch()
                }
                if !accepting { break }
            }
        } onGracefulShutdown: {
            Task { await self.stopAccepting() }
        }
        for submission in pending {
            submission.continuation.resume(throwing: Self.unavailable("audit is shutting down"))
        }
        pending.removeAll()
    }

    private func stopAccepting() {
        accepting = false
        wake.yield()
    }

    private static func unavailable(_ reason: String) -> Problem {
        Problem(.serviceUnavailable, "\(reason); retry with the same idempotency keys")
    }

    private func writeNextBatch() async {
        var batch: [Submission] = []
        var count = 0
        while let next = pending.first, batch.isEmpty || count + next.events.count <= batchLimit {
            batch.append(pending.removeFirst())
            count += next.events.count
        }
        do {
            let receipts = try await append(batch.flatMap(\.events))
            var offset = 0
            for submission in batch {
                submission.continuation.resume(returning: Array(receipts[offset..<offset + submission.events.count]))
                offset += submission.events.count
            }
        } catch {
            logger.error("appending to the audit chain failed", metadata: ["error": "\(error)", "events": "\(count)"])
            let problem = Self.unavailable("the events could not be stored")
            for submission in batch { submission.continuation.resume(throwing: problem) }
        }
    }

    /// One transaction: lock the head, answer known keys with their seq, number, stamp and hash
    /// the new events from the head on, write them and move the head.
    private func append(_ events: [PreparedEvent]) async throws -> [ChainReceipt] {
        let logger = logger
        return try await Database.transaction(postgres, logger: logger) { connection in
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
