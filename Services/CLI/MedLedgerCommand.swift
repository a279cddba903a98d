import ArgumentParser

@main
struct MedLedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medledger",
        abstract: "MedLedger client tool: offline proof verification, key generation, canonical JSON.",
        subcommands: [VerifyCommand.self, KeygenCommand.self, CanonicalJSONCommand.self]
    )
}
