import HTTPTypes
package import Logging
import ServiceLifecycle

/// Group commit (design guide): callers queue their items; one loop takes everything queued (up
/// to `batchLimit` items, and always at least one caller's) and hands it to `write` as one
/// batch, and the next batch starts the moment the previous one finished. No timer holds a
/// caller back, and many concurrent small requests share a few transactions. Each caller gets
/// its own items' receipts once `write` returned, i.e. once they are durable. The ledger
/// sequences entries this way and audit appends events.
package actor GroupCommitQueue<Item: Sendable, Receipt: Sendable> {
    private struct Submission {
        var items: [Item]
        var continuation: CheckedContinuation<[Receipt], any Error>
    }

    private let batchLimit: Int
    /// What is being stored, for logs and answers ("entries", "events").
    private let what: String
    private let shutdownMessage: String
    private var pending: [Submission] = []
    private var accepting = true
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    /// A batch takes milliseconds; one still unanswered after this has hung (see `abandoning`).
    private let writeLimit: Duration

    /// `shutdownMessage`: the 503 detail while the service stops ("the ledger is shutting down").
    package init(batchLimit: Int, what: String, shutdownMessage: String, writeLimit: Duration = .seconds(15)) {
        self.batchLimit = batchLimit
        self.writeLimit = writeLimit
        self.what = what
        self.shutdownMessage = shutdownMessage
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues `items` and returns their receipts (in order) once written.
    package func submit(_ items: [Item]) async throws -> [Receipt] {
        guard accepting else { throw retry(shutdownMessage) }
        return try await withCheckedThrowingContinuation { continuation in
            pending.append(Submission(items: items, continuation: continuation))
            wake.yield()
        }
    }

    /// Writes batches until graceful shutdown. `write` returns one receipt per item, in order;
    /// when it throws, nothing of the batch may have been stored and every caller gets a 503.
    package func run(logger: Logger, write: @escaping @Sendable ([Item]) async throws -> [Receipt]) async {
        await withGracefulShutdownHandler {
            for await _ in wakeups {
                while !pending.isEmpty {
                    await writeNextBatch(logger: logger, write: write)
                }
                if !accepting { break }
            }
        } onGracefulShutdown: {
            Task { await self.stopAccepting() }
        }
        for submission in pending {
            submission.continuation.resume(throwing: retry(shutdownMessage))
        }
        pending.removeAll()
    }

    private func stopAccepting() {
        accepting = false
        wake.yield()
    }

    private func retry(_ reason: String) -> Problem {
        Problem(.serviceUnavailable, "\(reason); retry with the same idempotency keys")
    }

    private func writeNextBatch(logger: Logger, write: @escaping @Sendable ([Item]) async throws -> [Receipt]) async {
        var batch: [Submission] = []
        var count = 0
        while let next = pending.first, batch.isEmpty || count + next.items.count <= batchLimit {
            batch.append(pending.removeFirst())
            count += next.items.count
        }
        do {
            let items = batch.flatMap(\.items)
            let receipts = try await abandoning("storing \(count) \(what)", after: writeLimit) { try await write(items) }
            var offset = 0
            for submission in batch {
                submission.continuation.resume(returning: Array(receipts[offset..<offset + submission.items.count]))
                offset += submission.items.count
            }
        } catch {
            logger.error("storing \(what) failed", metadata: ["error": "\(error)", "count": "\(count)"])
            let problem = retry("the \(what) could not be stored")
            for submission in batch { submission.continuation.resume(throwing: problem) }
        }
    }
}
