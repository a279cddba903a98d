import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// Queues notifications in the transaction that writes a report version (an outbox: a version
/// that committed has its events, one that rolled back has none). Criteria are matched here,
/// against the version as written, with the SQL of records' own search; who may read it is
/// checked later, when each notification goes out.
enum SubscriptionMatching {
    /// Subscriptions whose criteria go into one statement.
    static let chunk = 200

    static func enqueue(reportID id: String, base: String, on connection: PostgresConnection, logger: Logger) async throws {
        let now = Micros.of(Date())
        var live: [(id: String, criteria: SearchRequest)] = []
        let rows = try await connection.query(
            "SELECT id, criteria FROM subscriptions WHERE NOT deleted AND status <> 'off' AND (ends_at IS NULL OR ends_at > \(now))",
            logger: logger)
        for try await (subscription, criteria) in rows.decode((String, String).self) {
            // Stored criteria were checked when written; one that no longer parses matches nothing.
            guard let request = try? SubscriptionSpec.criteria(criteria) else { continue }
            live.append((subscription, request))
        }
        var start = 0
        while start < live.count {
            let part = live[start..<min(start + chunk, live.count)]
            start += chunk
            var builder = SQLBuilder()
            let alternatives = part.map { subscription in
                var conditions = subscription.criteria.filters.map { SearchCondition.sql($0, type: .diagnosticReport, base: base, &builder) }
                if conditions.isEmpty { conditions = ["TRUE"] }
                return "CASE WHEN \(conditions.joined(separator: " AND ")) THEN \(builder.bind(subscription.id)) END"
            }
            builder.append(
                """
                INSERT INTO subscription_events (subscription, resource_id, version, written_at)
                SELECT m.subscription, r.id, r.version, r.last_updated FROM resources r
                CROSS JOIN LATERAL unnest(ARRAY[\(alternatives.joined(separator: ", "))]::text[]) AS m(subscription)
                WHERE r.type = 'DiagnosticReport' AND r.id = \(builder.bind(id)) AND NOT r.deleted AND m.subscription IS NOT NULL
                """)
            try await connection.query(builder.query, logger: logger)
        }
    }
}
