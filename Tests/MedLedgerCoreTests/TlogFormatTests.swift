import MedLedgerCore
import TestSupport
import Testing

@Suite struct TlogFormatTests {
    @Test(arguments: [(0, "000"), (67, "067"), (1000, "x001/000"), (1_234_067, "x001/x234/067"), (999_999, "x999/999")] as [(Int64, String)])
    func encodesTileIndexes(_ index: Int64, _ path: String) {
        #expect(TilePath.encode(index: index) == path)
        #expect(TilePath(components: ["0"] + path.split(separator: "/")) == TilePath(level: 0, index: index))
    }

    @Test func parsesPartialAndEntryTiles() {
        #expect(TilePath(components: ["entries", "x001", "067.p", "8"]) == TilePath(level: nil, index: 1067, partialWidth: 8))
        #expect(TilePath(components: ["2", "005.p", "255"])?.path == "2/005.p/255")
    }

    @Test(arguments: [
        ["0"], ["0", "67"], ["0", "0067"], ["0", "x000", "067"], ["0", "001", "067"], ["64", "000"], ["01", "000"], ["x", "000"],
        ["0", "000.p", "0"], ["0", "000.p", "256"], ["0", "000.p", "08"], ["0", "000.p"], ["entries"], ["0", "x001", "x002"], ["0", "-01"],
    ])
    func rejectsNonCanonicalTilePaths(_ components: [String]) {
        #expect(TilePath(components: components.map { Substring($0) }) == nil)
    }

    @Test func tlogProofRoundTrip() throws {
        let signer = try NoteSigner.generate(name: "example.com/log")
        let leaves = MerkleReference.leaves(5)
        let checkpoint = Checkpoint(origin: "example.com/log", size: 5, rootHash: MerkleReference.root(leaves[...]))
        let note = try SignedNote.sign(text: checkpoint.body, with: signer).formatted
        let proof = TlogProof(extra: [1, 2, 3], index: 3, hashes: MerkleReference.path(3, leaves[...]), checkpoint: note)
        let parsed = try TlogProof.parse(proof.formatted)
        #expect(parsed == proof)
        #expect(try parsed.verify(leafData: leaves[3], verifier: signer.verifier) == checkpoint)
        #expect(throws: ProofError.self) { try parsed.verify(leafData: leaves[2], verifier: signer.verifier) }
        #expect(throws: ProofError.self) { try parsed.verify(leafData: leaves[3], verifier: try NoteSigner.generate(name: "example.com/log").verifier) }
        #expect(proof.formatted.hasPrefix("c2sp.org/tlog-proof@v1\nextra AQID\nindex 3\n"))
    }
}
