import Configuration
import Foundation
import Logging
import MedLedgerCore

/// Audit's settings on top of the common ones (names in the README and openapi/audit.yaml).
struct AuditConfig: Sendable {
    var common: CommonConfig
    /// Audit's public URL (`AUDIT_URL`): `/fhir` under it is the base of Bundle links.
    var publicURL: String
    /// Where chain heads are anchored.
    var ledger: LedgerPeer
    /// How often the chain head is anchored when it moved (`AUDIT_ANCHOR_SECONDS`).
    var anchorInterval: Duration
    /// Most events in one `POST /events`.
    var batchLimit: Int

    /// A single AuditEvent larger than this is not one of ours (413).
    static let eventMaxBytes = 64 * 1024

    init(reader: ConfigReader, logger: Logger) throws(ConfigError) {
        common = try CommonConfig(reader: reader, defaultPort: 8084, defaultDatabase: "audit")
        publicURL = try reader.url("audit.url", default: "http://127.0.0.1:\(common.port)").absoluteString.trimmingSuffix("/")
        ledger = try LedgerPeer(reader: reader, mode: common.mode, logger: logger)
        anchorInterval = .seconds(try reader.integer("audit.anchor.seconds", default: 10, range: 1...3600))
        batchLimit = try reader.integer("audit.batch.limit", default: 1000, range: 1...10000)
        if common.serviceCredentials == nil {
            if common.mode == .production {
                throw ConfigError("OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET are required in production mode: audit anchors its chain head in the ledger")
            }
            logger.warning("OAUTH_CLIENT_ID not set: the chain head is not anchored in the ledger (development mode only)")
        }
    }

    var fhirBase: String { publicURL + "/fhir" }
}
