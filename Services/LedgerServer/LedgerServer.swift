import ArgumentParser
import Ledger
import MedLedgerCore

@main
struct LedgerServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medledger-ledger",
        abstract: "MedLedger's verifiable append-only log (C2SP transparency log).",
        subcommands: [Serve.self, Healthcheck.self],
        defaultSubcommand: Serve.self
    )

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the service (configured by environment variables).")
        func run() async throws {
            try await ServiceRunner.serve { reader in try await buildApplication(reader: reader) }
        }
    }

    struct Healthcheck: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Exit 0 when this service's /health/ready answers 200.")
        func run() async throws {
            try await ServiceRunner.healthcheck(defaultPort: 8085)
        }
    }
}
