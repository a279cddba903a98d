import Logging
import MedLedgerCore
import PostgresNIO

/// What every records controller needs, built once in `buildApplication`.
struct RecordsDependencies: Sendable {
    let postgres: PostgresClient
    let keys: DataKeyStore
    let store: ResourceStore
    let audit: AuditLog
    let config: RecordsConfig
    /// Calls to the ledger with records' own token; nil without credentials (development).
    let ledger: ServiceClient?
    /// Write transactions: they wake the ledger and audit outboxes' workers once committed.
    let outboxes: OutboxTransactions
    /// Patients' grants to doctors and EHR systems, from the consent service.
    let consent: ConsentGrantCache

    var base: String { config.fhirBase }

    /// A write's transaction; once it committed, its ledger entry and audit event go out without waiting for a poll.
    func writeTransaction<Result: Sendable>(logger: Logger, _ body: (PostgresConnection) async throws -> sending Result) async throws -> Result {
        try await outboxes.transaction(logger: logger, body)
    }
}
