import MedLedgerCore
import Testing

/// The ledger entry of a version: its exact RFC 8785 bytes, the SHA3-256 commitment and ref.
@Suite struct LedgerEntryTests {
    @Test func commitmentIsSHA3Of256OverSaltThenBytes() {
        // FIPS 202 example: SHA3-256("abc"); the salt is simply the first bytes hashed.
        #expect(LedgerEntry.commitment(salt: [], canonical: Array("abc".utf8)).hexString == "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532")
        #expect(LedgerEntry.commitment(salt: Array("ab".utf8), canonical: Array("c".utf8)) == LedgerEntry.commitment(salt: [], canonical: Array("abc".utf8)))
        var streamed = CommitmentHasher(salt: Array("a".utf8))
        streamed.update(Array("b".utf8))
        streamed.update(Array("c".utf8))
        #expect(streamed.finalize() == LedgerEntry.commitment(salt: [], canonical: Array("abc".utf8)))
        #expect(LedgerEntry.ref(salt: [1], versionReference: "Patient/p/_history/1") == LedgerEntry.commitment(salt: [1], canonical: Array("Patient/p/_history/1".utf8)))
    }

    @Test func entryBytesAreCanonicalAndParseBack() throws {
        let salt = [UInt8](repeating: 7, count: LedgerEntry.saltSize)
        let entry = LedgerEntry(salt: salt, canonical: Array(#"{"a":1}"#.utf8), versionReference: "DiagnosticReport/r/_history/2", time: "2026-11-21T10:00:00.123Z")
        let text = String(decoding: entry.canonical, as: UTF8.self)
        #expect(text == #"{"commitment":"\#(entry.commitment.base64String)","ref":"\#(entry.ref.base64String)","time":"2026-11-21T10:00:00.123Z","v":1}"#)
        #expect(LedgerEntry(try JSONParser.parse(entry.canonical)) == entry)
        #expect(LedgerEntry.randomSalt().count == 32 && LedgerEntry.randomSalt() != LedgerEntry.randomSalt())
    }

    @Test func otherShapesAreNotVersionEntries() throws {
        for text in [
            #"{"v":2,"commitment":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","ref":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","time":"t"}"#,
            #"{"v":1,"commitment":"AAAA","ref":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","time":"t"}"#,
            #"{"v":1,"commitment":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","ref":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","time":"t","x":0}"#,
            #"{"type":"audit-head"}"#, "[1]",
        ] {
            #expect(LedgerEntry(try JSONParser.parse(Array(text.utf8))) == nil, "\(text)")
        }
    }
}
