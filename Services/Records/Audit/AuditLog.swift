import HTTPTypes
import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// The `audit_outbox` writer. Writes put their event in their own transaction; reads go
/// through group commit: whatever events arrive while one insert runs go together in the next,
/// and each caller returns only once its row is durable (design guide, "Nothing lost").
actor AuditLog {
    private let postgres: PostgresClient
    private let logger: Logger
    private var pending: [(key: String, event: String, done: CheckedContinuation<Void, any Error>)] = []
    private var flushing = false
    static let batchLimit = 1000

    init(postgres: PostgresClient, logger: Logger) {
        self.postgres = postgres
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
        let row = Self.row(event)
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            pending.append((row.key, row.event, done))
            if !flushing {
                flushing = true
                Task { await self.flush() }
            }
        }
    }

    private func flush() async {
        while !pending.isEmpty {
            let batch = Array(pending.prefix(Self.batchLimit))
            pending.removeFirst(batch.count)
            let keys = batch.map(\.key)
            let events = batch.map(\.event)
            do {
                try await postgres.query(
                    "INSERT INTO audit_outbox (idempotency_key, event) SELECT * FROM unnest(\(keys)::text[], \(events)::text[])", logger: logger)
                for item in batch { item.done.resume() }
            } catch {
                logger.error("audit events could not be stored", metadata: ["count": "\(batch.count)"])
                for item in batch { item.done.resume(throwing: Problem(.serviceUnavailable, "the audit record could not be stored; retry later")) }
            }
        }
        flushing = false
    }
}
