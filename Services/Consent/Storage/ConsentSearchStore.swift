import Logging
import MedLedgerCore
import PostgresNIO

/// A page of Consent search results and what its links need.
struct ConsentPage: Sendable {
    /// (id, last_updated, body) of each match, in order.
    var matches: [(id: String, lastUpdated: Int64, body: String)]
    var total: Int?
    var hasNext: Bool
    var hasPrevious: Bool
}

/// Runs Consent searches in SQL: filters, the caller's access, keyset paging and the total in
/// one query, so totals and pages only ever contain what the caller may see.
enum ConsentSearchStore {
    static func search(_ request: ConsentSearchRequest, access: ConsentAccess, on connection: PostgresConnection, logger: Logger) async throws
        -> ConsentPage
    {
        let controls = request.controls
        guard controls.count > 0 else {
            let total = controls.includeTotal ? try await count(request, access: access, on: connection, logger: logger) : nil
            return ConsentPage(matches: [], total: total, hasNext: false, hasPrevious: false)
        }
        var builder = SQLBuilder()
        builder.append("SELECT c.id, c.last_updated, v.body, ")
        if controls.includeTotal {
            // The total in the page's own query: one round trip. The subquery's `c` is its own.
            builder.append("(SELECT count(*) FROM consents c WHERE \(conditions(request, access: access, &builder)))")
        } else {
            builder.append("NULL::bigint")
        }
        builder.append(" FROM consents c JOIN consent_versions v ON v.id = c.id AND v.version = c.version WHERE ")
        builder.append(conditions(request, access: access, &builder))
        let paging = controls.paging
        builder.append(paging.clauses(sort: "c.last_updated", id: "c.id", &builder))
        var rows: [(id: String, lastUpdated: Int64, body: String)] = []
        var total: Int?
        for try await c in try await connection.query(builder.query, logger: logger).decode((String, Int64, String, Int?).self) {
            // Live consents only, so every current version has its body.
            rows.append((c.0, c.1, c.2))
            total = c.3
        }
        if controls.includeTotal, rows.isEmpty {
            // No row carried the total: without a cursor there is nothing to count.
            total = controls.cursor == nil ? 0 : try await count(request, access: access, on: connection, logger: logger)
        }
        let page = paging.page(rows)
        return ConsentPage(matches: page.rows, total: total, hasNext: page.hasNext, hasPrevious: page.hasPrevious)
    }

    private static func count(_ request: ConsentSearchRequest, access: ConsentAccess, on connection: PostgresConnection, logger: Logger) async throws
        -> Int
    {
        var builder = SQLBuilder()
        builder.append("SELECT count(*) FROM consents c WHERE \(conditions(request, access: access, &builder))")
        var total = 0
        for try await count in try await connection.query(builder.query, logger: logger).decode(Int.self) { total = count }
        return total
    }

    /// Live consents the caller may see that match every filter.
    private static func conditions(_ request: ConsentSearchRequest, access: ConsentAccess, _ builder: inout SQLBuilder) -> String {
        (["NOT c.deleted", "(" + access.condition(alias: "c", &builder) + ")"] + request.conditions(&builder)).joined(separator: " AND ")
    }
}
