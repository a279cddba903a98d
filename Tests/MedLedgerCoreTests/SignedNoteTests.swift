import Foundation
import MedLedgerCore
import Testing

@Suite struct SignedNoteTests {
    /// The example key and note from the documentation of Go's golang.org/x/mod/sumdb/note.
    static let goSKey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let goVKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let goNote = """
        If you think cryptography is the answer to your problem,
        then you don't know what your problem is.

        — PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=

        """

    @Test func interoperatesWithGoNote() throws {
        let signer = try NoteSigner(skey: Self.goSKey)
        #expect(signer.verifier.vkey == Self.goVKey)
        #expect(signer.skey == Self.goSKey)
        let note = try SignedNote.parse(Self.goNote)
        try note.verify(try NoteVerifier(vkey: Self.goVKey))
        // Ed25519 is deterministic: signing the same text reproduces Go's signature byte for byte.
        #expect(try SignedNote.sign(text: note.text, with: signer).formatted == Self.goNote)
    }

    @Test func rejectsTamperedNotesAndForeignKeys() throws {
        let verifier = try NoteVerifier(vkey: Self.goVKey)
        let altered = Self.goNote.replacingOccurrences(of: "cryptography", with: "blockchain")
        #expect(throws: NoteKeyError.self) { try SignedNote.parse(altered).verify(verifier) }
        let other = try NoteSigner.generate(name: "PeterNeumann")
        let forged = try SignedNote.sign(text: try SignedNote.parse(Self.goNote).text, with: other)
        #expect(throws: NoteKeyError.self) { try forged.verify(verifier) }
    }

    @Test(arguments: [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  // wrong key id
        "PeterNeumann+c74f20a3+AhpcQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  // wrong algorithm / length
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ])
    func rejectsMalformedVerifierKeys(_ vkey: String) {
        #expect(throws: NoteKeyError.self) { try NoteVerifier(vkey: vkey) }
    }

    @Test func checkpointRoundTripAndOriginCheck() throws {
        let signer = try NoteSigner.generate(name: "example.com/log")
        let checkpoint = Checkpoint(origin: "example.com/log", size: 42, rootHash: MerkleTree.emptyRoot)
        let note = try SignedNote.sign(text: checkpoint.body, with: signer).formatted
        #expect(try Checkpoint.verified(note: note, verifier: signer.verifier) == checkpoint)
        let wrongOrigin = try SignedNote.sign(text: Checkpoint(origin: "other/log", size: 1, rootHash: MerkleTree.emptyRoot).body, with: signer)
        #expect(throws: NoteKeyError.self) { try Checkpoint.verified(note: wrongOrigin.formatted, verifier: signer.verifier) }
        #expect(throws: NoteKeyError.self) { try Checkpoint.parse(body: "example.com/log\n042\n\(MerkleTree.emptyRoot.base64String)\n") }
    }
}
