public import Logging
public import ServiceLifecycle

/// Delivers an outbox (design guide, "Nothing lost"): runs `deliverBatch` until it reports
/// nothing left, then waits for a `wake()` (a local write committed) or the poll interval (rows
/// from other processes, or left after a restart). Failures back off exponentially up to
/// `maxBackoff`, so a peer that comes back is served within that bound. `deliverBatch` claims
/// its rows itself (`FOR UPDATE SKIP LOCKED`), so several processes share one outbox safely.
public final class OutboxWorker: Service, Sendable {
    public let name: String
    let deliverBatch: @Sendable () async throws -> Int
    let pollInterval: Duration
    let maxBackoff: Duration
    let logger: Logger
    private let wakeups: AsyncStream<Void>
    private let wakeup: AsyncStream<Void>.Continuation

    /// `deliverBatch` returns how many rows it delivered; 0 means the outbox is empty.
    public init(
        name: String, pollInterval: Duration = .seconds(1), maxBackoff: Duration = .seconds(2), logger: Logger,
        deliverBatch: @escaping @Sendable () async throws -> Int
    ) {
        self.name = name
        self.deliverBatch = deliverBatch
        self.pollInterval = pollInterval
        self.maxBackoff = maxBackoff
        self.logger = logger
        (wakeups, wakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Something was written: deliver it now rather than at the next poll.
    public func wake() { wakeup.yield() }

    public func run() async throws {
        let (wakeup, pollInterval) = (self.wakeup, self.pollInterval)
        try? await cancelWhenGracefulShutdown {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: pollInterval)
                        wakeup.yield()
                    }
                }
                group.addTask { try await self.deliverLoop() }
            }
        }
    }

    /// Longer than a round's slowest peer call (30 s) would be too late for a hung one: a round
    /// abandoned while merely slow is redone, and its peer deduplicates (see `abandoning`).
    private let roundLimit = Duration.seconds(20)

    private func deliverLoop() async throws {
        var backoff = Duration.milliseconds(100)
        var failing = false
        for await _ in wakeups {
            while !Task.isCancelled {
                do {
                    let delivered = try await abandoning("\(name) delivery", after: roundLimit, deliverBatch)
                    if failing {
                        logger.info("\(name) delivery works again")
                        failing = false
                    }
                    backoff = .milliseconds(100)
                    if delivered == 0 { break }
                } catch where !Task.isCancelled {
                    // Logged once per outage, not once per retry.
                    if !failing { logger.warning("\(name) delivery failed; retrying", metadata: ["error": "\(error)"]) }
                    failing = true
                    try await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, maxBackoff)
                }
            }
            if Task.isCancelled { return }
        }
    }
}
