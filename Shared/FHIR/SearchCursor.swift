/// Where a page starts: after (next) or before (previous) a row, by its sort value and id.
/// Opaque to clients (base64url), so that links stay valid while rows are added.
package struct SearchCursor: Sendable, Equatable {
    package var after: Bool
    package var sortValue: Int64
    package var id: String

    package init(after: Bool, sortValue: Int64, id: String) {
        self.after = after
        self.sortValue = sortValue
        self.id = id
    }

    package init?(_ text: String) {
        guard let bytes = Base64.decodeLenient(text), let decoded = String(validating: bytes, as: UTF8.self) else { return nil }
        let parts = decoded.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "a" || parts[0] == "b", let value = Int64(parts[1]), FHIRReference.isValidID(parts[2]) else { return nil }
        self.init(after: parts[0] == "a", sortValue: value, id: String(parts[2]))
    }

    package var text: String { Array("\(after ? "a" : "b")|\(sortValue)|\(id)".utf8).base64URLString }
}

/// Keyset paging over `(sort value, id)`: no OFFSET, so a page costs the same wherever it is and
/// rows added meanwhile neither repeat nor go missing.
package struct KeysetPaging: Sendable {
    package var limit: Int
    package var cursor: SearchCursor?
    package var descending: Bool
    /// The id column is a bigint: the cursor's id (checked numeric when parsed) is bound as one.
    package var numericIDs: Bool

    package init(limit: Int, cursor: SearchCursor?, descending: Bool, numericIDs: Bool = false) {
        self.limit = limit
        self.cursor = cursor
        self.descending = descending
        self.numericIDs = numericIDs
    }

    /// A `previous` page is read walking backwards from the cursor, then put in order.
    package var backwards: Bool { cursor.map { !$0.after } ?? false }

    /// ` AND (sort, id) beyond the cursor` (nothing without one), then the ORDER BY and a
    /// LIMIT one row over the page, which tells whether more follow.
    package func clauses(sort column: String, id: String, _ builder: inout SQLBuilder) -> String {
        let descending = self.descending != backwards
        var sql = ""
        if let cursor {
            let cursorID = numericIDs ? builder.bind(Int64(cursor.id) ?? 0) : builder.bind(cursor.id)
            sql += " AND (\(column), \(id)) \(descending ? "<" : ">") (\(builder.bind(cursor.sortValue)), \(cursorID))"
        }
        let direction = descending ? "DESC" : "ASC"
        sql += " ORDER BY \(column) \(direction), \(id) \(direction) LIMIT \(builder.bind(limit + 1))"
        return sql
    }

    /// The page among the rows read with `clauses`, in order, and whether pages lie either side.
    package func page<Row>(_ rows: [Row]) -> (rows: [Row], hasNext: Bool, hasPrevious: Bool) {
        var rows = rows
        let more = rows.count > limit
        if more { rows.removeLast() }
        if backwards { rows.reverse() }
        return (rows, backwards ? true : more, backwards ? more : cursor != nil)
    }
}
