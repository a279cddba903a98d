package import Logging
package import PostgresNIO

/// Transactions that write outbox rows: once one has committed, the outboxes' workers are woken,
/// so its rows go out at once rather than at the next poll. (Woken before the commit, a worker
/// would not see them yet.)
package struct OutboxTransactions: Sendable {
    package let postgres: PostgresClient
    /// The workers to wake; none when nothing delivers (development without service credentials).
    let workers: [OutboxWorker]

    package init(postgres: PostgresClient, workers: [OutboxWorker?]) {
        self.postgres = postgres
        self.workers = workers.compactMap { $0 }
    }

    package func transaction<Result>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        let result = try await Database.transaction(postgres, logger: logger, isolation: isolation, body)
        wake()
        return result
    }

    /// Rows were committed some other way (e.g. records' group commit of read events).
    package func wake() {
        for worker in workers { worker.wake() }
    }
}
