import Configuration
import Crypto
import Foundation
import Logging
import MedLedgerCore

/// Records' settings on top of the common ones (names in the README and openapi/records.yaml).
struct RecordsConfig: Sendable {
    var common: CommonConfig
    /// The public base of the FHIR API (`RECORDS_URL` + `/fhir`), for `Location` and Bundle links.
    var fhirBase: String
    var keys: KeyEncryptionKeys
    var binaryMaxBytes: Int
    var resourceMaxBytes: Int
    /// The ledger: anchors and `$verify` check checkpoint signatures with its key.
    var ledger: LedgerPeer
    /// Most outbox entries sent to the ledger in one request.
    var anchorBatchLimit: Int
    var consentURL: URL
    /// How long a grant list from consent is used (`CONSENT_CACHE_SECONDS`; consent's `maxAge`
    /// may shorten it): the bound on how late a revocation reaches records.
    var consentCacheSeconds: Int
    /// How subscriptions' notifications are retried and timed out.
    var subscriptions: SubscriptionSettings

    init(reader: ConfigReader, logger: Logger) throws(ConfigError) {
        common = try CommonConfig(reader: reader, defaultPort: 8082, defaultDatabase: "records")
        let publicURL = try reader.url("records.url", default: "http://127.0.0.1:\(common.port)")
        fhirBase = publicURL.absoluteString.trimmingSuffix("/") + "/fhir"
        if let keks = reader.text("records.keks", secret: true) {
            keys = try KeyEncryptionKeys(parsing: keks, active: reader.text("records.active.kek"))
        } else if common.mode == .production {
            throw ConfigError("RECORDS_KEKS is required in production mode: `kid:base64,…`, each key 32 random bytes (`openssl rand -base64 32`)")
        } else {
            keys = KeyEncryptionKeys(generatedFor: "dev")
            logger.warning("RECORDS_KEKS not set: data keys are wrapped with a throwaway key, so stored records are lost on restart (development mode only)")
        }
        binaryMaxBytes = try reader.integer("binary.max.bytes", default: 25 << 20, range: 1024...(1 << 31))
        resourceMaxBytes = try reader.integer("resource.max.bytes", default: 1 << 20, range: 1024...(64 << 20))
        ledger = try LedgerPeer(reader: reader, mode: common.mode, logger: logger)
        if common.serviceCredentials == nil {
            if common.mode == .production {
                throw ConfigError("OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET are required in production mode: records sends every version to the ledger")
            }
            logger.warning(
                "OAUTH_CLIENT_ID not set: versions are not sent to the ledger and stay pending, audit events stay in the outbox, and no access by consent is granted (development mode only)"
            )
        }
        anchorBatchLimit = try reader.integer("anchor.batch.limit", default: 500, range: 1...1000)
        consentURL = try reader.url("consent.url", default: "http://127.0.0.1:8083")
        consentCacheSeconds = try reader.integer("consent.cache.seconds", default: 5, range: 0...60)
        subscriptions = SubscriptionSettings(
            retryBaseMilliseconds: try reader.integer("subscription.retry.base.ms", default: 1000, range: 10...600_000),
            retryMaxMilliseconds: try reader.integer("subscription.retry.max.ms", default: 60_000, range: 10...3_600_000),
            maxFailures: try reader.integer("subscription.max.failures", default: 10, range: 1...1000),
            timeoutMilliseconds: try reader.integer("subscription.timeout.ms", default: 10_000, range: 100...60_000))
    }

    /// Base64 grows content by 4/3; a JSON Binary also carries a few small elements.
    var binaryJSONMaxBytes: Int { binaryMaxBytes / 3 * 4 + 64 * 1024 }
}
