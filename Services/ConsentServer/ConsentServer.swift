import ArgumentParser
import Configuration
import Consent
import Hummingbird
import MedLedgerCore

@main
struct ConsentServer: AsyncParsableCommand, ServiceExecutable {
    static let configuration = CommandConfiguration(
        commandName: "medledger-consent",
        abstract: "MedLedger's consent service: FHIR Consents, access decisions and grants for records, break-glass sessions.",
        subcommands: [ServeCommand<ConsentServer>.self, HealthcheckCommand<ConsentServer>.self],
        defaultSubcommand: ServeCommand<ConsentServer>.self
    )
    static let defaultPort = 8083

    static func buildApplication(reader: ConfigReader) async throws -> some ApplicationProtocol {
        try await Consent.buildApplication(reader: reader)
    }
}
