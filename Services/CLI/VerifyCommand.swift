import ArgumentParser
import Foundation
import MedLedgerCore

/// `medledger verify`: checks offline, trusting only the log's verifier key, either that an entry
/// is in the log (the checkpoint signature and origin, then the inclusion proof of the entry's
/// RFC 8785 bytes), or that a downloaded report version is anchored (ReportVerification).
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a report version (with its $verify Parameters) or a ledger entry (with its tlog-proof) against the log's verifier key.",
        discussion: """
            A report version: --parameters with its $verify answer, and --resource with its vread JSON, \
            --content with a Binary's raw bytes, or --deleted for a deletion.

            A ledger entry: --entry with --proof.
            """
    )

    @Option(help: "The version's $verify Parameters (FHIR JSON as the server sent it).")
    var parameters: String?

    @Option(help: "The version's resource JSON as vread served it.")
    var resource: String?

    @Option(help: "A Binary version's raw content.")
    var content: String?

    @Flag(help: "The version is a deletion (it commits to the empty byte string).")
    var deleted = false

    @Option(help: "The entry JSON file (any formatting; it is canonicalised with RFC 8785).")
    var entry: String?

    @Option(help: "The c2sp.org/tlog-proof@v1 file.")
    var proof: String?

    @Option(help: "The log's verifier key (name+id+key), or @file holding it.")
    var vkey: String

    @Option(help: "The expected log origin (default: the verifier key's name).")
    var origin: String?

    func validate() throws {
        let held = [resource != nil, content != nil, deleted].filter { $0 }.count
        if parameters != nil || held > 0 {
            guard parameters != nil, held == 1, entry == nil, proof == nil else {
                throw ValidationError("give --parameters with exactly one of --resource, --content or --deleted (not --entry/--proof)")
            }
        } else if entry == nil || proof == nil {
            throw ValidationError("give --parameters with --resource, --content or --deleted; or --entry with --proof")
        }
    }

    func run() throws {
        do {
            let verifier = try verifier()
            if let parameters {
                let parametersBytes = try read(parameters, what: "Parameters file")
                print(try ReportVerification.verify(try held(), parameters: parametersBytes, verifier: verifier).summary)
            } else if let entry, let proof {  // validate() makes this the only other case
                let checkpoint = try verifyEntry(entry, proof: proof, verifier: verifier)
                print("verified: entry \(checkpoint.index) is in \(checkpoint.origin) at tree size \(checkpoint.size)")
            }
        } catch {
            FileHandle.standardError.write(Data("verify failed: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
    }

    func held() throws(VerifyFailure) -> HeldVersion {
        if let resource { return .resource(try read(resource, what: "resource file")) }
        if let content { return .content(try read(content, what: "content file")) }
        return .deleted
    }

    func verifier() throws(VerifyFailure) -> NoteVerifier {
        let keyText = vkey.hasPrefix("@") ? String(decoding: try read(String(vkey.dropFirst()), what: "verifier key file"), as: UTF8.self) : vkey
        let verifier: NoteVerifier
        do {
            verifier = try NoteVerifier(vkey: keyText.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            throw VerifyFailure("bad verifier key: \(error)")
        }
        if let origin, origin != verifier.name {
            throw VerifyFailure("the verifier key is for \(verifier.name), not \(origin)")
        }
        return verifier
    }

    func verifyEntry(_ entry: String, proof: String, verifier: NoteVerifier) throws(VerifyFailure) -> (index: Int64, origin: String, size: Int64) {
        let entryBytes = try read(entry, what: "entry file")
        let value: JSONValue
        do {
            value = try JSONParser.parse(entryBytes)
        } catch {
            throw VerifyFailure("the entry is not valid JSON: \(error)")
        }
        let leafData: [UInt8]
        do {
            leafData = try value.canonicalized()
        } catch {
            throw VerifyFailure("the entry cannot be canonicalised: \(error)")
        }
        let proofText = String(decoding: try read(proof, what: "proof file"), as: UTF8.self)
        do {
            let parsed = try TlogProof.parse(proofText)
            let checkpoint = try parsed.verify(leafData: leafData, verifier: verifier)
            return (parsed.index, checkpoint.origin, checkpoint.size)
        } catch {
            throw VerifyFailure(error.message)
        }
    }

    func read(_ path: String, what: String) throws(VerifyFailure) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw VerifyFailure("cannot read the \(what) \(path)") }
        return Array(data)
    }
}
