import Foundation
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// One version with its anchoring state: what a Provenance resource is made from.
struct AnchoredVersion: Sendable {
    var type: ResourceType
    var id: String
    var version: Int
    var lastUpdated: Int64
    var deleted: Bool
    var patient: String?
    var seq: Int64
    var writtenBy: String?
    var commitment: [UInt8]?
    var leafIndex: Int64?
    var checkpointSize: Int64?
    var anchoredAt: Int64?
    var logOrigin: String?

    var versionReference: String { "\(type.rawValue)/\(id)/_history/\(version)" }
}

/// Provenance is derived, not stored: one per version, made from the version row and its
/// ledger outbox row, and visible to exactly those who may read the version it targets.
enum ProvenanceStore {
    struct Filter {
        var type: ResourceType?
        var id: String?
        var version: Int?
        var patient: String?
        var seq: Int64?
        var beforeSeq: Int64?
    }

    /// Newest first, at most `limit`.
    static func versions(_ filter: Filter, access: ReadAccess, limit: Int, postgres: PostgresClient, logger: Logger) async throws -> [AnchoredVersion] {
        var builder = SQLBuilder()
        builder.append(
            """
            SELECT v.type, v.id, v.version, v.last_updated, v.deleted, v.patient, v.seq, coalesce(v.written_by, v.author), v.commitment,
                o.leaf_index, o.checkpoint_size, (extract(epoch FROM o.anchored_at) * 1000000)::bigint, split_part(c.note, E'\\n', 1)
            FROM resource_versions v LEFT JOIN ledger_outbox o ON o.seq = v.seq LEFT JOIN ledger_checkpoints c ON c.size = o.checkpoint_size
            WHERE TRUE
            """)
        if let type = filter.type { builder.append(" AND v.type = \(builder.bind(type.rawValue))") }
        if let id = filter.id { builder.append(" AND v.id = \(builder.bind(id))") }
        if let version = filter.version { builder.append(" AND v.version = \(builder.bind(version))") }
        if let patient = filter.patient { builder.append(" AND v.patient = \(builder.bind(patient))") }
        if let seq = filter.seq { builder.append(" AND v.seq = \(builder.bind(seq))") }
        if let before = filter.beforeSeq { builder.append(" AND v.seq < \(builder.bind(before))") }
        // The target's own access rule, per type (type names are this enum's literals).
        let visible = ResourceType.allCases.map { type in
            "(v.type = '\(type.rawValue)' AND \(access.rule(on: type).condition(type: type, alias: "v", &builder)))"
        }
        builder.append(" AND (\(visible.joined(separator: " OR "))) ORDER BY v.seq DESC LIMIT \(builder.bind(limit))")
        let rows = try await postgres.query(builder.query, logger: logger)
        var found: [AnchoredVersion] = []
        typealias Columns = (String, String, Int, Int64, Bool, String?, Int64, String?, ByteBuffer?, Int64?, Int64?, Int64?, String?)
        for try await c in rows.decode(Columns.self) {
            guard let type = ResourceType(rawValue: c.0) else { continue }
            found.append(
                AnchoredVersion(
                    type: type, id: c.1, version: c.2, lastUpdated: c.3, deleted: c.4, patient: c.5, seq: c.6, writtenBy: c.7,
                    commitment: c.8.map { Array($0.readableBytesView) }, leafIndex: c.9, checkpointSize: c.10, anchoredAt: c.11,
                    logOrigin: c.12.flatMap { $0.isEmpty ? nil : $0 }))
        }
        return found
    }
}
