import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// The two questions records asks, each one indexed query: does an actor hold a grant for this
/// report now, and which grants does an actor hold now. Active, undeleted consents whose period
/// contains now count, and break-glass sessions that have started, not ended and not expired.
enum GrantStore {
    /// One grant in force: from a consent (`basis` `Consent/…`) or a break-glass session (`break-glass/…`, scope all).
    struct Held: Sendable, Equatable {
        var patient: String
        var scope: String
        var category: String?
        var resource: String?
        /// µs since 1970: the period's end or the session's expiry; nil when open.
        var until: Int64?
        var basis: String
    }

    /// The basis of a permit, or nil for a deny; a consent is preferred to a break-glass session.
    static func decide(_ question: DecisionQuestion, at now: Date, postgres: PostgresClient, logger: Logger) async throws -> String? {
        let micros = Micros.of(now)
        let rows = try await postgres.query(
            """
            SELECT basis FROM (
                SELECT 'Consent/' || id AS basis, 0 AS rank, last_updated AS recent FROM consents
                WHERE actor = \(question.actor) AND patient = \(question.patient) AND status = 'active' AND NOT deleted
                    AND (period_start IS NULL OR period_start <= \(micros)) AND (period_end IS NULL OR \(micros) < period_end)
                    AND (grant_scope = 'all' OR (grant_scope = 'category' AND category = ANY(\(question.categories)))
                        OR (grant_scope = 'resource' AND resource = \(question.resource)))
                UNION ALL
                SELECT 'break-glass/' || id, 1, 0 FROM break_glass
                WHERE actor = \(question.actor) AND patient = \(question.patient) AND started_at <= \(now) AND \(now) < expires_at AND ended_at IS NULL
            ) held ORDER BY rank, recent DESC, basis LIMIT 1
            """,
            logger: logger)
        var basis: String?
        for try await found in rows.decode(String.self) { basis = found }
        return basis
    }

    /// Every grant `actor` holds now, by patient.
    static func held(by actor: String, at now: Date, postgres: PostgresClient, logger: Logger) async throws -> [Held] {
        let micros = Micros.of(now)
        let rows = try await postgres.query(
            """
            SELECT patient, grant_scope, category, resource, period_end, 'Consent/' || id AS basis FROM consents
            WHERE actor = \(actor) AND status = 'active' AND NOT deleted
                AND (period_start IS NULL OR period_start <= \(micros)) AND (period_end IS NULL OR \(micros) < period_end)
            UNION ALL
            SELECT patient, 'all', NULL, NULL, (extract(epoch FROM expires_at) * 1000000)::bigint, 'break-glass/' || id FROM break_glass
            WHERE actor = \(actor) AND started_at <= \(now) AND \(now) < expires_at AND ended_at IS NULL
            ORDER BY patient, basis
            """,
            logger: logger)
        var held: [Held] = []
        for try await c in rows.decode((String, String, String?, String?, Int64?, String).self) {
            held.append(Held(patient: c.0, scope: c.1, category: c.2, resource: c.3, until: c.4, basis: c.5))
        }
        return held
    }
}
