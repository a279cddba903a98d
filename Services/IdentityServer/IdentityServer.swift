import ArgumentParser
import Configuration
import Foundation
import Identity
import MedLedgerCore

@main
struct IdentityServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medledger-identity",
        abstract: "MedLedger's identity provider: accounts, OAuth 2.0 tokens, JWKS.",
        subcommands: [Serve.self, Healthcheck.self, RotateKeys.self],
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
            try await ServiceRunner.healthcheck(defaultPort: 8081)
        }
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
