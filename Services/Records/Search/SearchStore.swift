import NIOCore
import Logging
import MedLedgerCore
import PostgresNIO

/// A page of search results: the matches (current versions, sealed) and what the links need.
struct SearchPage: Sendable {
    var matches: [StoredVersion]
    var total: Int?
    var hasNext: Bool
    var hasPrevious: Bool
    /// Sort values of the first and last match, for the `previous`/`next` cursors.
    var sortValues: [Int64]
}

/// Runs searches in SQL: filters, the caller's access rule, keyset paging and the count all in
/// the database, so totals and pages only ever contain what the caller may see.
enum SearchStore {
    static func search(
        _ request: SearchRequest, rule: AccessRule, base: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> SearchPage {
        guard !request.summaryCount, request.count > 0 else {
            let total = request.includeTotal || request.summaryCount ? try await count(request, rule: rule, base: base, on: connection, logger: logger) : nil
            return SearchPage(matches: [], total: total, hasNext: false, hasPrevious: false, sortValues: [])
        }
        var builder = SQLBuilder()
        let column = "r.\(request.sort.column)"
        builder.append("SELECT \(StoredVersion.columns), \(column)")
        if request.includeTotal {
            // The total in the page's own query: one round trip instead of two. The subquery's
            // `r` is its own, so the conditions count every match, not just this page's.
            builder.append(", (SELECT count(*) FROM resources r WHERE ")
            builder.append(conditions(request, rule: rule, base: base, &builder))
            builder.append(")")
        } else {
            builder.append(", NULL::bigint")
        }
        builder.append(" FROM resources r JOIN resource_versions v ON v.type = r.type AND v.id = r.id AND v.version = r.version WHERE ")
        builder.append(conditions(request, rule: rule, base: base, &builder))
        let paging = request.controls.paging
        builder.append(paging.clauses(sort: column, id: "r.id", &builder))
        var rows: [(StoredVersion, Int64)] = []
        var total: Int?
        for try await row in try await connection.query(builder.query, logger: logger) {
            let c = try row.decode((String, String, Int, Int64, Bool, String?, String?, String?, String, ByteBuffer?, Int64, Int64, Int?).self)
            rows.append((try StoredVersion.make((c.0, c.1, c.2, c.3, c.4, c.5, c.6, c.7, c.8, c.9, c.10)), c.11))
            total = c.12
        }
        if request.includeTotal, rows.isEmpty {
            // No row carried the total: without a cursor there is nothing to count.
            total = request.cursor == nil ? 0 : try await count(request, rule: rule, base: base, on: connection, logger: logger)
        }
        let page = paging.page(rows)
        return SearchPage(
            matches: page.rows.map(\.0), total: total, hasNext: page.hasNext, hasPrevious: page.hasPrevious, sortValues: page.rows.map(\.1))
    }

    /// Ids of the live resources matching (for `If-None-Exist`), at most `limit`.
    static func matchingIDs(
        _ request: SearchRequest, rule: AccessRule, base: String, limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> [String] {
        var builder = SQLBuilder()
        builder.append("SELECT r.id FROM resources r WHERE ")
        builder.append(conditions(request, rule: rule, base: base, &builder))
        builder.append(" LIMIT \(builder.bind(limit))")
        var ids: [String] = []
        for try await id in try await connection.query(builder.query, logger: logger).decode(String.self) { ids.append(id) }
        return ids
    }

    static func count(_ request: SearchRequest, rule: AccessRule, base: String, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        var builder = SQLBuilder()
        builder.append("SELECT count(*) FROM resources r WHERE ")
        builder.append(conditions(request, rule: rule, base: base, &builder))
        return try await connection.query(builder.query, logger: logger).collect().first!.decode(Int.self)
    }

    private static func conditions(_ request: SearchRequest, rule: AccessRule, base: String, _ builder: inout SQLBuilder) -> String {
        var parts = ["r.type = \(builder.bind(request.type.rawValue))", "NOT r.deleted"]
        parts.append("(" + rule.condition(type: request.type, alias: "r", &builder) + ")")
        for filter in request.filters {
            parts.append(SearchCondition.sql(filter, type: request.type, base: base, &builder))
        }
        return parts.joined(separator: " AND ")
    }
}

