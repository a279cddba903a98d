public import Configuration
public import Foundation
public import Logging

/// Where a service anchors in the ledger (`LEDGER_URL`) and the key its checkpoints are checked
/// against (`LEDGER_VKEY`, required in production). Records and audit both anchor.
public struct LedgerPeer: Sendable {
    public var url: URL
    public var verifier: NoteVerifier?

    public init(reader: ConfigReader, mode: DeploymentMode, logger: Logger) throws(ConfigError) {
        url = try reader.url("ledger.url", default: "http://127.0.0.1:8085")
        if let vkey = reader.text("ledger.vkey") {
            do {
                verifier = try NoteVerifier(vkey: vkey)
            } catch {
                throw ConfigError("LEDGER_VKEY is not a signed-note verifier key (name+id+key): \(error.message)")
            }
        } else if mode == .production {
            throw ConfigError("LEDGER_VKEY is required in production mode: the ledger's verifier key, which anchors are checked against")
        } else {
            logger.warning("LEDGER_VKEY not set: anchors are checked against the checkpoint's root but not its signature (development mode only)")
        }
    }

    /// `POST /entries`, answering once a signed checkpoint covers the entries (with their proofs).
    public var entriesURL: URL {
        var components = URLComponents(url: url.appendingPathComponent("entries"), resolvingAgainstBaseURL: false)!
        components.queryItems = [URLQueryItem(name: "wait", value: "checkpoint")]
        return components.url!
    }
}
