import MedLedgerCore
import PostgresNIO

/// What every audit controller needs, built once in `buildApplication`.
struct AuditDependencies: Sendable {
    let postgres: PostgresClient
    let config: AuditConfig

    var base: String { config.fhirBase }
}
