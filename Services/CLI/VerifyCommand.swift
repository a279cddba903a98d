import ArgumentParser
import Foundation
import MedLedgerCore

/// `medledger verify`: checks offline that an entry is in the log, trusting only the log's
/// verifier key: the checkpoint signature and origin, then the inclusion proof of the entry's
/// RFC 8785 bytes.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify an entry against a C2SP tlog-proof and the log's verifier key."
    )

    @Option(help: "The entry JSON file (any formatting; it is canonicalised with RFC 8785).")
    var entry: String

    @Option(help: "The c2sp.org/tlog-proof@v1 file.")
    var proof: String

    @Option(help: "The log's verifier key (name+id+key), or @file holding it.")
    var vkey: String

    @Option(help: "The expected log origin (default: the verifier key's name).")
    var origin: String?

    func run() throws {
        do {
            let checkpoint = try verify()
            print("verified: entry \(checkpoint.index) is in \(checkpoint.origin) at tree size \(checkpoint.size)")
        } catch {
            FileHandle.standardError.write(Data("verify failed: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
    }

    struct VerifyFailure: Error {
        var message: String
    }

    func verify() throws(VerifyFailure) -> (index: Int64, origin: String, size: Int64) {
        let entryBytes = try read(entry, what: "entry file")
        let value: JSONValue
        do {
            value = try JSONParser.parse(entryBytes)
        } catch {
            throw VerifyFailure(message: "the entry is not valid JSON: \(error)")
        }
        let leafData: [UInt8]
        do {
            leafData = try value.canonicalized()
        } catch {
            throw VerifyFailure(message: "the entry cannot be canonicalised: \(error)")
        }
        let keyText = vkey.hasPrefix("@") ? String(decoding: try read(String(vkey.dropFirst()), what: "verifier key file"), as: UTF8.self) : vkey
        let verifier: NoteVerifier
        do {
            verifier = try NoteVerifier(vkey: keyText.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            throw VerifyFailure(message: "bad verifier key: \(error)")
        }
        if let origin, origin != verifier.name {
            throw VerifyFailure(message: "the verifier key is for \(verifier.name), not \(origin)")
        }
        let proofText = String(decoding: try read(proof, what: "proof file"), as: UTF8.self)
        do {
            let parsed = try TlogProof.parse(proofText)
            let checkpoint = try parsed.verify(leafData: leafData, verifier: verifier)
            return (parsed.index, checkpoint.origin, checkpoint.size)
        } catch {
            throw VerifyFailure(message: error.message)
        }
    }

    func read(_ path: String, what: String) throws(VerifyFailure) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw VerifyFailure(message: "cannot read the \(what) \(path)") }
        return Array(data)
    }
}
