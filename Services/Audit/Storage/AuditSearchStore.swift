import Logging
import MedLedgerCore
import PostgresNIO

/// One match of an AuditEvent search: its id (chain seq), date (the paging key) and stored text.
typealias AuditMatch = (seq: Int64, recorded: Int64, event: String)

/// Runs AuditEvent searches and reads in SQL: filters, the caller's access, keyset paging on
/// (recorded, seq) and the total in one query, so totals and pages only hold what the caller
/// may see.
enum AuditSearchStore {
    static func search(
        _ request: AuditSearchRequest, access: AuditAccess, on connection: PostgresConnection, logger: Logger
    ) async throws
        -> SearchResult<AuditMatch>
    {
        let source = Source(driver: access.patient ?? request.pinnedPatient)
        return try await KeysetSearch.page(
            request.controls, columns: "e.seq, e.recorded, e.event", sort: source.recorded, id: source.seq,
            rows: { builder in source.rows(request, &builder) }, count: { builder in source.count(request, &builder) }, on: connection,
            logger: logger,
            decode: { row in
                let (seq, recorded, event) = try row.decode((Int64, Int64, String).self)
                return (seq, recorded, event)
            })
    }

    /// The stored event `seq` when the caller may see it.
    static func event(_ seq: Int64, access: AuditAccess, on connection: PostgresConnection, logger: Logger) async throws -> String? {
        let query: PostgresQuery
        switch access {
        case .none: return nil
        case .all: query = "SELECT event FROM audit_events WHERE seq = \(seq)"
        case .patient(let patient):
            // The whole primary key of the patient's index row: one probe.
            query = """
                SELECT e.event FROM audit_events e
                JOIN audit_patient_events a ON a.patient = \(patient) AND a.recorded = e.recorded AND a.seq = e.seq
                WHERE e.seq = \(seq)
                """
        }
        for try await event in try await connection.query(query, logger: logger).decode(String.self) { return event }
        return nil
    }

    /// Where a search reads its rows. With one patient pinned (by access or by `patient`) it
    /// walks that patient's index rows in date order, so a patient's last 50 events cost 50
    /// index rows however long the trail; otherwise the chain's own date index.
    private struct Source {
        let driver: String?

        var recorded: String { driver == nil ? "e.recorded" : "a.recorded" }
        var seq: String { driver == nil ? "e.seq" : "a.seq" }

        /// `FROM … WHERE …` of the rows that match; `events`: the events' columns are needed
        /// (for a count of a patient's rows by date alone they are not).
        func rows(_ request: AuditSearchRequest, events: Bool = true, _ builder: inout SQLBuilder) -> String {
            let conditions = request.conditions(recorded: recorded, driver: driver, &builder)
            guard let driver else { return "FROM audit_events e WHERE " + (conditions.isEmpty ? "TRUE" : conditions.joined(separator: " AND ")) }
            let from = events ? "audit_patient_events a JOIN audit_events e ON e.seq = a.seq" : "audit_patient_events a"
            return "FROM \(from) WHERE " + (["a.patient = \(builder.bind(driver))"] + conditions).joined(separator: " AND ")
        }

        /// `SELECT count(*) …` of the rows that match.
        func count(_ request: AuditSearchRequest, _ builder: inout SQLBuilder) -> String {
            "SELECT count(*) " + rows(request, events: request.filtersEvents(driver: driver), &builder)
        }
    }
}
