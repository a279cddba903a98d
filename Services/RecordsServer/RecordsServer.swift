import ArgumentParser
import Configuration
import Foundation
import Hummingbird
import MedLedgerCore
import Records

@main
struct RecordsServer: AsyncParsableCommand, ServiceExecutable {
    static let configuration = CommandConfiguration(
        commandName: "medledger-records",
        abstract: "MedLedger's FHIR R4 server for patients, practitioners, diagnostic reports and their files.",
        subcommands: [ServeCommand<RecordsServer>.self, HealthcheckCommand<RecordsServer>.self, RotateKEK.self],
        defaultSubcommand: ServeCommand<RecordsServer>.self
    )
    static let defaultPort = 8082

    static func buildApplication(reader: ConfigReader) async throws -> some ApplicationProtocol {
        try await Records.buildApplication(reader: reader)
    }

    struct RotateKEK: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-kek",
            abstract: "Rewrap every patient data key under RECORDS_ACTIVE_KEK (DATABASE_URL, RECORDS_KEKS with the old and new keys)."
        )
        func run() async throws {
            do {
                let (count, kek) = try await rotateKeyEncryptionKey(reader: ConfigReader(provider: EnvironmentVariablesProvider()))
                print("rewrapped \(count) data keys under KEK \(kek)")
            } catch let error as ConfigError {
                FileHandle.standardError.write(Data("configuration error: \(error.message)\n".utf8))
                throw ExitCode(2)
            }
        }
    }
}
