import Foundation
import MedLedgerCore
import PostgresNIO

/// One stored version of a consent, with the current row's patient and actor (whom access
/// rules follow).
struct StoredConsent: Sendable {
    var id: String
    var version: Int
    var lastUpdated: Int64
    var deleted: Bool
    /// The JSON as served (nil for a deletion).
    var body: String?
    var patient: String
    var actor: String

    /// The columns `init(row:)` reads, from `consent_versions` aliased `v` and `consents` aliased `c`.
    static let columns = "v.id, v.version, v.last_updated, v.deleted, v.body, c.patient, c.actor"

    var lastUpdatedDate: Date { Micros.date(lastUpdated) }
    var reference: String { "Consent/\(id)" }
    var versionReference: String { "Consent/\(id)/_history/\(version)" }
}

extension StoredConsent {
    init(row: PostgresRow) throws {
        let c = try row.decode((String, Int, Int64, Bool, String?, String, String).self)
        self.init(id: c.0, version: c.1, lastUpdated: c.2, deleted: c.3, body: c.4, patient: c.5, actor: c.6)
    }
}
