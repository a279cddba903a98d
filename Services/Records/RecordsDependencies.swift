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
    /// Sends the ledger outbox; nil when records has no credentials for the ledger (development).
    let anchoring: OutboxWorker?
    /// Patients' grants to doctors and EHR systems, from the consent service.
    let consent: ConsentGrantCache

    var base: String { config.fhirBase }

    /// A write's transaction; once it committed, its ledger entry goes out without waiting for a poll.
    func writeTransaction<Result: Sendable>(logger: Logger, _ body: (PostgresConnection) async throws -> sending Result) async throws -> Result {
        let result = try await Database.transaction(postgres, logger: logger, body)
        anchoring?.wake()
        return result
    }
}
