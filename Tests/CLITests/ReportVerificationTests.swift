@testable import CLI
import Foundation
import MedLedgerCore
import TestSupport
import Testing

/// `medledger verify --parameters`: a version anchored as records anchors it (its entry is leaf 2
/// of a five-leaf log whose checkpoint `signer` signed) verifies offline; every change to what
/// the user holds, to the Parameters or to the trusted key fails with a one-line reason.
@Suite struct ReportVerificationTests {
    static let origin = "example.com/log"
    static let target = "DiagnosticReport/r1/_history/2"
    static let time = "2026-11-21T10:00:00.123Z"

    /// The vread JSON of the version, deliberately not in RFC 8785 form (member order, spacing, 1.50).
    static func report(id: String = "r1", version: String = "2", time: String = time, conclusion: String = "Normal") -> [UInt8] {
        Array(
            """
            {"resourceType": "DiagnosticReport", "id": "\(id)",
             "meta": {"versionId": "\(version)", "lastUpdated": "\(time)"},
             "status": "final", "code": {"text": "Potassium"}, "conclusion": "\(conclusion)",
             "extension": [{"url": "https://example.org/x", "valueDecimal": 1.50}]}
            """.utf8)
    }

    static let content: [UInt8] = Array("%PDF-1.4\n".utf8) + (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 31) } + Array("\n%%EOF\n".utf8)

    struct Anchor {
        var target: String
        var entry: LedgerEntry
        var proof: TlogProof
    }

    let signer: NoteSigner
    let salt = [UInt8](repeating: 7, count: LedgerEntry.saltSize)

    init() throws {
        signer = try NoteSigner.generate(name: Self.origin)
    }

    /// The entry of a version with these committed bytes, as leaf 2 of a signed five-leaf log.
    func anchor(_ committed: [UInt8], target: String = target, time: String = time) throws -> Anchor {
        let entry = LedgerEntry(salt: salt, canonical: committed, versionReference: target, time: time)
        var leaves = MerkleReference.leaves(5)
        leaves[2] = entry.canonical
        let checkpoint = Checkpoint(origin: Self.origin, size: 5, rootHash: MerkleReference.root(leaves[...]))
        let note = try SignedNote.sign(text: checkpoint.body, with: signer).formatted
        return Anchor(target: target, entry: entry, proof: TlogProof(index: 2, hashes: MerkleReference.path(2, leaves[...]), checkpoint: note))
    }

    func anchorReport() throws -> Anchor {
        try anchor(try JSONParser.parse(Self.report()).canonicalized())
    }

    /// `$verify`'s Parameters for an anchor, as VerifyController writes them.
    func parameters(
        _ anchor: Anchor, target: String? = nil, salt: [UInt8]? = nil, entry: String? = nil, result: String = "verified", proof: Bool = true
    ) -> [UInt8] {
        func parameter(_ name: String, _ key: String, _ value: JSONValue) -> JSONValue { .object([("name", .string(name)), (key, value)]) }
        var list: [JSONValue] = [
            parameter("result", "valueCode", .string(result)),
            parameter("target", "valueReference", .object([("reference", .string(target ?? anchor.target))])),
            parameter("commitment", "valueBase64Binary", .string(anchor.entry.commitment.base64String)),
            parameter("salt", "valueBase64Binary", .string((salt ?? self.salt).base64String)),
            parameter("entry", "valueString", .string(entry ?? String(decoding: anchor.entry.canonical, as: UTF8.self))),
        ]
        if proof {
            list.append(parameter("leafIndex", "valueInteger", .number(String(anchor.proof.index))))
            list.append(parameter("checkpoint", "valueString", .string(anchor.proof.checkpoint)))
            list.append(parameter("tlogProof", "valueString", .string(anchor.proof.formatted)))
        }
        if result == "mismatch" { list.append(parameter("issue", "valueString", .string("the stored body fails authentication"))) }
        return JSONValue.object([("resourceType", .string("Parameters")), ("parameter", .array(list))]).serialized()
    }

    /// The failure message, or nil when the version verifies.
    func failure(_ held: HeldVersion, _ parameters: [UInt8], verifier: NoteVerifier? = nil) -> String? {
        do {
            _ = try ReportVerification.verify(held, parameters: parameters, verifier: verifier ?? signer.verifier)
            return nil
        } catch {
            #expect(!error.message.contains("\n"), "one line: \(error.message)")
            return error.message
        }
    }

    func expectFailure(_ held: HeldVersion, _ parameters: [UInt8], verifier: NoteVerifier? = nil, mentioning words: String, _ what: Comment) {
        let message = failure(held, parameters, verifier: verifier)
        #expect(message?.contains(words) == true, "\(what): \(message ?? "verified")")
    }

    @Test func genuineVersionVerifies() throws {
        let anchor = try anchorReport()
        let verified = try ReportVerification.verify(.resource(Self.report()), parameters: parameters(anchor), verifier: signer.verifier)
        #expect(verified == VerifiedVersion(target: Self.target, leafIndex: 2, origin: Self.origin, treeSize: 5))
        #expect(verified.summary == "verified: DiagnosticReport/r1/_history/2 is leaf 2 of example.com/log (tree size 5)")
        // Any formatting of the same JSON commits alike (RFC 8785: 1.50 is 1.5).
        let canonical = String(decoding: try JSONParser.parse(Self.report()).canonicalized(), as: UTF8.self)
        let reformatted = canonical.replacingOccurrences(of: "1.5", with: "1.500")
        #expect(failure(.resource(Array(reformatted.utf8)), parameters(anchor)) == nil)
    }

    @Test func changedResourceFails() throws {
        let anchor = try anchorReport()
        let changed = Self.report(conclusion: "Normai")
        expectFailure(.resource(changed), parameters(anchor), mentioning: "does not match the entry's commitment", "one byte")
        let extra = String(decoding: Self.report(), as: UTF8.self).replacingOccurrences(of: "\"status\"", with: "\"note\": 1, \"status\"")
        expectFailure(.resource(Array(extra.utf8)), parameters(anchor), mentioning: "commitment", "an added element")
    }

    @Test func wrongSaltFails() throws {
        let anchor = try anchorReport()
        var other = salt
        other[0] ^= 1
        expectFailure(.resource(Self.report()), parameters(anchor, salt: other), mentioning: "wrong salt", "salt")
        expectFailure(.resource(Self.report()), parameters(anchor, salt: [1, 2, 3]), mentioning: "salt is not 32", "short salt")
    }

    @Test func otherTargetOrVersionFails() throws {
        let anchor = try anchorReport()
        expectFailure(.resource(Self.report(version: "3")), parameters(anchor), mentioning: "resource is DiagnosticReport/r1/_history/3", "version")
        let version1 = parameters(anchor, target: "DiagnosticReport/r1/_history/1")
        expectFailure(.resource(Self.report()), version1, mentioning: "are for DiagnosticReport/r1/_history/1", "target")
        // Resource and target renamed consistently: the blinded ref gives it away.
        expectFailure(.resource(Self.report(id: "r9")), parameters(anchor, target: "DiagnosticReport/r9/_history/2"), mentioning: "ref", "renamed")
        let unversioned = parameters(anchor, target: "DiagnosticReport/r1")
        expectFailure(.resource(Self.report()), unversioned, mentioning: "not a versioned reference", "unversioned")
    }

    @Test func changedTimeFails() throws {
        let anchor = try anchorReport()
        let later = Self.report(time: "2026-11-21T10:00:01.123Z")
        expectFailure(.resource(later), parameters(anchor), mentioning: "meta.lastUpdated", "resource time")
        var entry = anchor.entry
        entry.time = "2026-11-21T10:00:01.123Z"
        let retimed = parameters(anchor, entry: String(decoding: entry.canonical, as: UTF8.self))
        expectFailure(.resource(Self.report()), retimed, mentioning: "time", "entry time")
    }

    @Test func forgedEntryFails() throws {
        let anchor = try anchorReport()
        // A changed report with an entry recomputed for it (the salt is known): the proof is for another leaf.
        let changed = Self.report(conclusion: "Abnormal")
        let forged = LedgerEntry(salt: salt, canonical: try JSONParser.parse(changed).canonicalized(), versionReference: Self.target, time: Self.time)
        let forgedText = String(decoding: forged.canonical, as: UTF8.self)
        expectFailure(.resource(changed), parameters(anchor, entry: forgedText), mentioning: "not proven to be in the log", "forged entry")
        let shapes = [#"{"v":2}"#, "not json", String(decoding: anchor.entry.canonical.dropLast(), as: UTF8.self) + #","x":1}"#]
        for text in shapes {
            expectFailure(.resource(Self.report()), parameters(anchor, entry: text), mentioning: "not a version entry", "entry \(text)")
        }
        var proof = anchor.proof
        proof.index = 3
        var moved = anchor
        moved.proof = proof
        expectFailure(.resource(Self.report()), parameters(moved), mentioning: "not proven", "another index")
    }

    @Test func wrongKeyFails() throws {
        let anchor = try anchorReport()
        let impostor = try NoteSigner.generate(name: Self.origin)
        expectFailure(.resource(Self.report()), parameters(anchor), verifier: impostor.verifier, mentioning: "checkpoint", "same name, other key")
        let otherLog = try NoteSigner.generate(name: "other.example/log")
        expectFailure(.resource(Self.report()), parameters(anchor), verifier: otherLog.verifier, mentioning: "other.example/log", "other log")
    }

    @Test func serverVerdictAndShapeAreChecked() throws {
        let anchor = try anchorReport()
        expectFailure(.resource(Self.report()), parameters(anchor, result: "mismatch"), mentioning: "reports a mismatch", "mismatch")
        expectFailure(.resource(Self.report()), parameters(anchor, result: "pending", proof: false), mentioning: "still pending", "pending")
        expectFailure(.resource(Self.report()), Self.report(), mentioning: "not a FHIR Parameters", "not Parameters")
        expectFailure(.resource(Array("{".utf8)), parameters(anchor), mentioning: "not valid JSON", "resource not JSON")
    }

    @Test func binaryContentAndJSONVerify() throws {
        let target = "Binary/b1/_history/1"
        let anchor = try anchor(Self.content, target: target)
        #expect(failure(.content(Self.content), parameters(anchor)) == nil)
        let json = JSONValue.object([
            ("resourceType", .string("Binary")), ("id", .string("b1")),
            ("meta", .object([("versionId", .string("1")), ("lastUpdated", .string(Self.time))])),
            ("contentType", .string("application/pdf")), ("data", .string(Self.content.base64String)),
        ])
        #expect(failure(.resource(json.serialized()), parameters(anchor)) == nil)
        var flipped = Self.content
        flipped[100] ^= 0x10
        expectFailure(.content(flipped), parameters(anchor), mentioning: "content does not match", "flipped byte")
        expectFailure(.content(Self.content), parameters(try anchorReport()), mentioning: "for Binary versions", "not a Binary")
    }

    @Test func deletionVerifies() throws {
        let anchor = try anchor([], target: "DiagnosticReport/r1/_history/3")
        #expect(failure(.deleted, parameters(anchor)) == nil)
        expectFailure(.deleted, parameters(try anchorReport()), mentioning: "deletion", "a version with content")
    }
}
