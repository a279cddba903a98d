import ArgumentParser
import Configuration
import Foundation
import Hummingbird
import Identity
import MedLedgerCore

@main
struct IdentityServer: AsyncParsableCommand, ServiceExecutable {
    static let configuration = CommandConfiguration(
        commandName: "medledger-identity",
        abstract: "MedLedger's identity provider: accounts, OAuth 2.0 tokens, JWKS.",
        subcommands: [ServeCommand<IdentityServer>.self, HealthcheckCommand<IdentityServer>.self, RotateKeys.self],
        defaultSubcommand: ServeCommand<IdentityServer>.self
    )
    static let defaultPort = 8081

    static func buildApplication(reader: ConfigReader) async throws -> some ApplicationProtocol {
        try await Identity.buildApplication(reader: reader)
    }

    struct RotateKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-keys",
            abstract: "Make a new token-signing key (DATABASE_URL, IDENTITY_KEK); the old one stays in the JWKS until the next rotation."
        )
        func run() async throws {
            do {
                let kid = try await rotateSigningKeys(reader: ConfigReader(provider: EnvironmentVariablesProvider()))
                print("kid=\(kid)")
            } catch let error as ConfigError {
                FileHandle.standardError.write(Data("configuration error: \(error.message)\n".utf8))
                throw ExitCode(2)
            }
        }
    }
}
