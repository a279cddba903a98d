import HTTPTypes
import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// The `audit_outbox` writer. Writes put their event in their own transaction; reads go
/// through group commit: whatever events arrive while one insert runs go together in the next,
/// and each caller returns only once its row is durable (design guide, "Nothing lost"). Each
/// committed insert wakes the outbox's delivery to the audit service.
actor AuditLog {
    private let postgres: PostgresClient
    /// Nil when nothing delivers (development without service credentials).
    private let delivery: OutboxWorker?
    private let logger: Logger
    /// Each waiting caller's rows (one per event) and its continuation.
    private var pending: [(rows: [AuditOutboxRow], done: CheckedContinuation<Void, any Error>)] = []
    private var flushing = false
    static let batchLimit = 1000

    init(postgres: PostgresClient, delivery: OutboxWorker?, logger: Logger) {
        self.postgres = postgres
        self.delivery = delivery
        self.logger = logger
    }

    static func row(_ event: RecordsAuditEvent) -> AuditOutboxRow {
        AuditOutboxRow(service: "records", event: event.resource(recorded: Date()))
    }

    /// Inside a write's transaction.
    static func record(_ event: RecordsAuditEvent, on connection: PostgresConnection, logger: Logger) async throws {
        try await row(event).insert(on: connection, logger: logger)
    }

    /// For reads: returns once the event is committed.
    func record(_ event: RecordsAuditEvent) async throws {
        try await record([event])
    }

    /// For reads concerning several patients (one event each): returns once all are committed.
    func record(_ events: [RecordsAuditEvent]) async throws {
        let rows = events.map(Self.row)
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            pending.append((rows, done))
            if !flushing {
                flushing = true
                Task { await self.flush() }
            }
        }
    }

    private func flush() async {
        while !pending.isEmpty {
            // Whole callers only, up to about `batchLimit` rows (one caller's rows always fit).
            var count = 1
            var rows = pending[0].rows.count
            while count < pending.count, rows + pending[count].rows.count <= Self.batchLimit {
                rows += pending[count].rows.count
                count += 1
            }
            let batch = Array(pending.prefix(count))
            pending.removeFirst(count)
            let keys = batch.flatMap { $0.rows.map(\.key) }
            let events = batch.flatMap { $0.rows.map(\.event) }
            do {
                try await postgres.query(
                    "INSERT INTO audit_outbox (idempotency_key, event) SELECT * FROM unnest(\(keys)::text[], \(events)::text[])", logger: logger)
                delivery?.wake()
                for item in batch { item.done.resume() }
            } catch {
                logger.error("audit events could not be stored", metadata: ["count": "\(keys.count)"])
                for item in batch { item.done.resume(throwing: Problem(.serviceUnavailable, "the audit record could not be stored; retry later")) }
            }
        }
        flushing = false
    }
}
