import MedLedgerCore
import PostgresNIO

/// What every consent controller needs, built once in `buildApplication`.
struct ConsentDependencies: Sendable {
    let postgres: PostgresClient
    let config: ConsentConfig
    /// Where patients and actors are looked up; nil without service credentials (development).
    let directory: (any Directory)?
    /// Consent and break-glass changes: their audit events go out as soon as they commit.
    let outboxes: OutboxTransactions

    var base: String { config.fhirBase }
}
