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

    var base: String { config.fhirBase }
}
