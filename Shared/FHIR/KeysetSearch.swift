package import Foundation
package import Logging
package import PostgresNIO

/// A page of search results and what its links need.
package struct SearchResult<Row> {
    package var rows: [Row]
    package var total: Int?
    package var hasNext: Bool
    package var hasPrevious: Bool
}

extension SearchResult: Sendable where Row: Sendable {}

extension SearchResult {
    /// This page as a searchset Bundle: `self`, `next` and `previous` links under `base/type`,
    /// a `match` entry per row (`key`: its sort value and id; `resource`: its stored bytes, as
    /// read serves them), then a warning naming the parameters lenient handling `ignored`.
    package func searchset(
        type: String, base: String, controls: SearchControls, ignored: [String], key: (Row) -> (sortValue: Int64, id: String),
        resource: (Row) -> [UInt8]
    ) -> [UInt8] {
        let links = SearchLinks.searchset(
            base: "\(base)/\(type)", applied: controls.applied, cursor: controls.cursor, page: (hasNext, hasPrevious), first: rows.first.map(key),
            last: rows.last.map(key))
        var bundle = BundleWriter(type: "searchset", total: total, links: links)
        for row in rows {
            bundle.entry(
                fullUrl: "\(base)/\(type)/\(key(row).id)", resource: resource(row), extra: [("search", .object([("mode", .string("match"))]))])
        }
        if !ignored.isEmpty { bundle.warning(.ignoredSearchParameters(ignored)) }
        return bundle.finish()
    }
}

/// Runs one page of a FHIR search: the matching rows in keyset order and, unless `_total=none`,
/// their count in the same query (one round trip), so that a search's access rules, filters,
/// totals and pages all come from one place.
package enum KeysetSearch {
    /// `columns`: the SELECT list of a row, which `decode` reads; `sort`/`id`: the paging
    /// columns; `rows` writes `FROM … WHERE …` of the matches, `count` a `SELECT count(*)` of
    /// them (each may be called more than once: it binds its values anew).
    package static func page<Row>(
        _ controls: SearchControls, columns: String, sort: String, id: String, rows: (inout SQLBuilder) -> String,
        count: (inout SQLBuilder) -> String, on connection: PostgresConnection, logger: Logger, decode: (PostgresRow) throws -> Row
    ) async throws -> SearchResult<Row> {
        func total() async throws -> Int {
            var builder = SQLBuilder()
            builder.append(count(&builder))
            var total = 0
            for try await value in try await connection.query(builder.query, logger: logger).decode(Int.self) { total = value }
            return total
        }
        guard controls.count > 0 else {
            return SearchResult(rows: [], total: controls.includeTotal ? try await total() : nil, hasNext: false, hasPrevious: false)
        }
        var builder = SQLBuilder()
        builder.append("SELECT \(columns), ")
        // The subquery's aliases are its own, so it counts every match, not just this page's.
        builder.append(controls.includeTotal ? "(\(count(&builder)))" : "NULL::bigint")
        builder.append(" " + rows(&builder))
        let paging = controls.paging
        builder.append(paging.clauses(sort: sort, id: id, &builder))
        var matches: [Row] = []
        var counted: Int?
        for try await row in try await connection.query(builder.query, logger: logger) {
            matches.append(try decode(row))
            let cells = row.makeRandomAccess()
            counted = try cells[cells.count - 1].decode(Int?.self, context: .default)
        }
        if controls.includeTotal, matches.isEmpty {
            // No row carried the total: without a cursor there is nothing to count.
            counted = controls.cursor == nil ? 0 : try await total()
        }
        let page = paging.page(matches)
        return SearchResult(rows: page.rows, total: counted, hasNext: page.hasNext, hasPrevious: page.hasPrevious)
    }
}
