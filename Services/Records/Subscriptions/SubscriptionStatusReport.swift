import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// What `$status` lists besides the subscription's state: its newest events, each with how its
/// delivery went (pending with its last error, delivered, or skipped and why).
enum SubscriptionStatusReport {
    static let limit = 20

    static func recentEvents(_ id: String, base: String, postgres: PostgresClient, logger: Logger) async throws -> [JSONValue] {
        let rows = try await postgres.query(
            """
            SELECT resource_id, version, written_at, state, event_number, attempts, error FROM subscription_events
            WHERE subscription = \(id) ORDER BY seq DESC LIMIT \(limit)
            """, logger: logger)
        var events: [JSONValue] = []
        for try await (reportID, version, writtenAt, state, number, attempts, error) in rows.decode((String, Int, Int64, String, Int64?, Int, String?).self) {
            var parts: [JSONValue] = []
            if let number { parts.append(NotificationBundle.part("event-number", ("valueString", .string(String(number))))) }
            parts.append(NotificationBundle.part("timestamp", ("valueInstant", .string(FHIRDate.instantText(Micros.date(writtenAt))))))
            // Only a delivered event names its report: a skipped one was a report the subscriber
            // may not read, a pending one has not been checked yet; not even their ids are shown.
            if state == "delivered" {
                parts.append(
                    NotificationBundle.part("focus", ("valueReference", .object([("reference", .string("\(base)/DiagnosticReport/\(reportID)/_history/\(version)"))]))))
            }
            parts += [
                NotificationBundle.part("state", ("valueCode", .string(state))),
                NotificationBundle.part("attempts", ("valueInteger", .number(String(attempts)))),
            ]
            if let error { parts.append(NotificationBundle.part("error", ("valueString", .string(error)))) }
            events.append(.object([("name", .string("notification-event")), ("part", .array(parts))]))
        }
        return events
    }
}
