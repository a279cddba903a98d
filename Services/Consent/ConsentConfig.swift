import Configuration
import Foundation
import Logging
import MedLedgerCore

/// Consent's settings on top of the common ones (names in the README and openapi/consent.yaml).
struct ConsentConfig: Sendable {
    var common: CommonConfig
    /// Consent's public URL (`CONSENT_URL`): `/fhir` under it is the base of `Location` headers and Bundle links.
    var publicURL: String
    /// Records (`RECORDS_URL`), where Patients and Practitioners are looked up.
    var recordsURL: URL
    /// How long a break-glass session lasts.
    var breakGlassDuration: Duration
    /// Seconds records may cache a decision or grant list (`maxAge` of every answer).
    var maxAge: Int

    /// Consents are small: anything larger is not one (413).
    static let resourceMaxBytes = 64 * 1024
    /// Decision and break-glass requests are a few references and a reason.
    static let requestMaxBytes = 16 * 1024

    init(reader: ConfigReader, logger: Logger) throws(ConfigError) {
        common = try CommonConfig(reader: reader, defaultPort: 8083, defaultDatabase: "consent")
        publicURL = try reader.url("consent.url", default: "http://127.0.0.1:\(common.port)").absoluteString.trimmingSuffix("/")
        recordsURL = try reader.url("records.url", default: "http://127.0.0.1:8082")
        breakGlassDuration = .seconds(60 * (try reader.integer("break.glass.minutes", default: 60, range: 1...1440)))
        maxAge = try reader.integer("consent.max.age", default: 5, range: 0...60)
        if common.serviceCredentials == nil {
            if common.mode == .production {
                throw ConfigError(
                    "OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET are required in production mode: consent checks that patients, practitioners and organizations exist"
                )
            }
            logger.warning(
                "OAUTH_CLIENT_ID not set: consents are stored without checking that their patient and actor exist, and audit events stay in the outbox (development mode only)"
            )
        }
    }

    var fhirBase: String { publicURL + "/fhir" }
}
