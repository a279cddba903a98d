import ArgumentParser
import Foundation
import MedLedgerCore

/// `medledger jcs`: RFC 8785 canonical form of JSON on stdin (used by the oracle tests and by
/// anyone recomputing a ledger leaf by hand).
struct CanonicalJSONCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jcs", abstract: "Print the RFC 8785 canonical form of JSON read from stdin.")

    @Flag(help: "One JSON document per input line; one output line per input line (`error: …` for invalid ones).")
    var lines = false

    func run() throws {
        let input = FileHandle.standardInput.readDataToEndOfFile()
        if lines {
            var output: [UInt8] = []
            for line in input.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast(input.last == 0x0A ? 1 : 0) {
                switch Self.canonical(Array(line)) {
                case .success(let bytes): output += bytes
                case .failure(let message): output += Array("error: \(message)".utf8)
                }
                output.append(0x0A)
            }
            FileHandle.standardOutput.write(Data(output))
        } else {
            switch Self.canonical(Array(input)) {
            case .success(let bytes): FileHandle.standardOutput.write(Data(bytes + [0x0A]))
            case .failure(let message):
                FileHandle.standardError.write(Data("error: \(message)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    enum Outcome {
        case success([UInt8])
        case failure(String)
    }

    static func canonical(_ bytes: [UInt8]) -> Outcome {
        do {
            return .success(try JSONParser.parse(bytes).canonicalized())
        } catch let error as JSONParseError {
            return .failure(error.description)
        } catch {
            return .failure("\(error)")
        }
    }
}
