import ArgumentParser
import Audit
import Configuration
import Hummingbird
import MedLedgerCore

@main
struct AuditServer: AsyncParsableCommand, ServiceExecutable {
    static let configuration = CommandConfiguration(
        commandName: "medledger-audit",
        abstract: "MedLedger's audit service: AuditEvents from every service in a SHA3-256 hash chain anchored in the ledger, searchable as FHIR.",
        subcommands: [ServeCommand<AuditServer>.self, HealthcheckCommand<AuditServer>.self],
        defaultSubcommand: ServeCommand<AuditServer>.self
    )
    static let defaultPort = 8084

    static func buildApplication(reader: ConfigReader) async throws -> some ApplicationProtocol {
        try await Audit.buildApplication(reader: reader)
    }
}
