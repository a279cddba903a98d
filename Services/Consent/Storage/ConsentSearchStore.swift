import Logging
import MedLedgerCore
import PostgresNIO

/// One match of a Consent search: its id, `meta.lastUpdated` (the paging key) and stored body.
typealias ConsentMatch = (id: String, lastUpdated: Int64, body: String)

/// Runs Consent searches in SQL: filters, the caller's access, keyset paging and the total in
/// one query, so totals and pages only ever contain what the caller may see.
enum ConsentSearchStore {
    static func search(
        _ request: ConsentSearchRequest, access: ConsentAccess, on connection: PostgresConnection, logger: Logger
    ) async throws
        -> SearchResult<ConsentMatch>
    {
        try await KeysetSearch.page(
            request.controls, columns: "c.id, c.last_updated, v.body", sort: "c.last_updated", id: "c.id",
            rows: { builder in
                // Live consents only, so every current version has its body.
                "FROM consents c JOIN consent_versions v ON v.id = c.id AND v.version = c.version WHERE "
                    + conditions(request, access: access, &builder)
            },
            count: { builder in "SELECT count(*) FROM consents c WHERE " + conditions(request, access: access, &builder) }, on: connection,
            logger: logger,
            decode: { row in
                let (id, lastUpdated, body) = try row.decode((String, Int64, String).self)
                return (id, lastUpdated, body)
            })
    }

    /// Live consents the caller may see that match every filter.
    private static func conditions(_ request: ConsentSearchRequest, access: ConsentAccess, _ builder: inout SQLBuilder) -> String {
        (["NOT c.deleted", "(" + access.condition(alias: "c", &builder) + ")"] + request.conditions(&builder)).joined(separator: " AND ")
    }
}
