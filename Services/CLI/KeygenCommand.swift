import ArgumentParser
import MedLedgerCore

/// `medledger keygen`: a new Ed25519 signed-note key pair for a log's checkpoints.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Generate a checkpoint signing key; prints LEDGER_SKEY=… and LEDGER_VKEY=… lines."
    )

    @Option(help: "The log origin, which is also the key name.")
    var origin: String = "medledger.local/ledger"

    func run() throws {
        let signer: NoteSigner
        do {
            signer = try NoteSigner.generate(name: origin)
        } catch {
            throw ValidationError("--origin: \(error.message)")
        }
        print("LEDGER_SKEY=\(signer.skey)")
        print("LEDGER_VKEY=\(signer.verifier.vkey)")
    }
}
