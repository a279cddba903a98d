import Foundation
package import Logging
package import PostgresNIO

/// One row of a service's `audit_outbox` (`idempotency_key`, `event`): the AuditEvent as the
/// audit service will receive it, keyed so that redelivery stores it once.
package struct AuditOutboxRow: Sendable {
    package var key: String
    package var event: String

    /// `service` prefixes the key (`records-…`, `consent-…`), so keys never clash across services.
    package init(service: String, event: JSONValue) {
        key = service + "-" + UUID().uuidString.lowercased()
        self.event = String(decoding: event.serialized(), as: UTF8.self)
    }

    /// Inside the transaction of the change the event describes.
    package func insert(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("INSERT INTO audit_outbox (idempotency_key, event) VALUES (\(key), \(event))", logger: logger)
    }
}
