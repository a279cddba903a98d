public import Configuration
public import Logging
public import MedLedgerCore

/// The ledger's settings on top of the common ones.
public struct LedgerConfig: Sendable {
    public var common: CommonConfig
    /// Signs checkpoints; its key name is the log origin.
    public var signer: NoteSigner
    public var checkpointInterval: Duration
    /// Most entries sequenced in one transaction (group commit batch).
    public var batchLimit: Int
    /// How long `?wait=checkpoint` waits before answering 503.
    public var checkpointWait: Duration
    public var maxEntriesPerRequest = 1000
    /// C2SP entry bundles carry 16-bit lengths.
    public var maxEntryBytes = 65535

    public var origin: String { signer.name }

    public init(reader: ConfigReader, logger: Logger) throws(ConfigError) {
        common = try CommonConfig(reader: reader, defaultPort: 8085, defaultDatabase: "ledger")
        let origin = reader.text("ledger.origin", default: "medledger.local/ledger")!
        if let skey = reader.text("ledger.skey", secret: true) {
            do {
                signer = try NoteSigner(skey: skey)
            } catch {
                throw ConfigError("LEDGER_SKEY is not a signed-note private key (PRIVATE+KEY+name+id+key): \(error.message)")
            }
            guard signer.name == origin else {
                throw ConfigError("LEDGER_SKEY is for \(signer.name) but LEDGER_ORIGIN is \(origin); the checkpoint key name must be the origin")
            }
        } else if common.mode == .development {
            do {
                signer = try NoteSigner.generate(name: origin)
            } catch {
                throw ConfigError("LEDGER_ORIGIN=\(origin) cannot be a key name: \(error.message)")
            }
            logger.warning("LEDGER_SKEY not set: using a throwaway key (development mode only)", metadata: ["vkey": "\(signer.verifier.vkey)"])
        } else {
            throw ConfigError("LEDGER_SKEY is required in production mode (generate one with `medledger keygen --origin \(origin)`)")
        }
        checkpointInterval = .milliseconds(try reader.integer("ledger.checkpoint.interval.ms", default: 200, range: 10...60_000))
        batchLimit = try reader.integer("ledger.batch.limit", default: 8192, range: 1...100_000)
        checkpointWait = .milliseconds(try reader.integer("ledger.checkpoint.wait.ms", default: 10_000, range: 100...120_000))
    }
}
