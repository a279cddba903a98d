import ArgumentParser
import Configuration
import Hummingbird
import Ledger
import MedLedgerCore

@main
struct LedgerServer: AsyncParsableCommand, ServiceExecutable {
    static let configuration = CommandConfiguration(
        commandName: "medledger-ledger",
        abstract: "MedLedger's verifiable append-only log (C2SP transparency log).",
        subcommands: [ServeCommand<LedgerServer>.self, HealthcheckCommand<LedgerServer>.self],
        defaultSubcommand: ServeCommand<LedgerServer>.self
    )
    static let defaultPort = 8085

    static func buildApplication(reader: ConfigReader) async throws -> some ApplicationProtocol {
        try await Ledger.buildApplication(reader: reader)
    }
}
