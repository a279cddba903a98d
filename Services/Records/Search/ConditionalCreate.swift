import HTTPTypes
import Logging
import MedLedgerCore
import PostgresNIO

/// `If-None-Exist`: create only when no resource matches. Atomic under concurrency: every
/// request with the same criteria first takes the row lock of that criteria's row in
/// `conditional_creates` (made by a unique-keyed insert), so a second request searches only
/// after the first committed and finds what it created.
struct ConditionalCreate {
    let search: SearchRequest
    /// The criteria in a canonical order: the same query written differently shares the lock.
    let key: String

    init(query text: String, type: ResourceType) throws(Problem) {
        var query = Substring(text)
        if let mark = query.firstIndex(of: "?") { query = query[query.index(after: mark)...] }
        let fields: [(name: String, value: String)]
        do {
            fields = try FormBody(parsing: query).fields
        } catch {
            throw Problem.badRequest("If-None-Exist is not a valid query: \(error.description)")
        }
        // Strict: a criterion silently dropped would match everything.
        search = try SearchRequest(type: type, fields: fields, strict: true)
        guard !search.filters.isEmpty else { throw Problem.badRequest("If-None-Exist needs at least one search parameter") }
        key = fields.map { "\($0.name)=\($0.value)" }.sorted().joined(separator: "&")
    }

    /// The one existing match (nil when there is none; 412 when there are several).
    func existing(_ interaction: FHIRInteraction, on connection: PostgresConnection) async throws -> WrittenVersion? {
        let type = interaction.type.rawValue
        try await connection.query(
            "INSERT INTO conditional_creates (type, query) VALUES (\(type), \(key)) ON CONFLICT DO NOTHING", logger: interaction.logger)
        try await connection.query(
            "SELECT 1 FROM conditional_creates WHERE type = \(type) AND query = \(key) FOR UPDATE", logger: interaction.logger)
        let ids = try await SearchStore.matchingIDs(
            search, rule: interaction.ownRule, base: interaction.deps.base, limit: 2, on: connection, logger: interaction.logger)
        switch ids.count {
        case 0:
            return nil
        case 1:
            guard
                let stored = try await ResourceReads.current(
                    interaction.type, id: ids[0], rule: interaction.ownRule, on: connection, logger: interaction.logger)
            else { return nil }
            return WrittenVersion(stored: stored, body: try await interaction.body(of: stored, on: connection))
        default:
            throw Problem(.preconditionFailed, "If-None-Exist matches more than one \(type); make the criteria more selective")
        }
    }
}
