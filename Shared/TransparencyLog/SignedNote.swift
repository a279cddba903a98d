import Foundation

/// C2SP signed-note: a text ending in a newline, a blank line, then signature lines
/// `— <key name> <base64(key id ‖ signature)>`.
public struct SignedNote: Sendable, Equatable {
    public struct Signature: Sendable, Equatable {
        public var name: String
        public var keyID: [UInt8]
        public var signature: [UInt8]
    }

    /// The signed text, including its final newline.
    public var text: String
    public var signatures: [Signature]

    static let dash = "\u{2014}"

    public static func sign(text: String, with signer: NoteSigner) throws(NoteKeyError) -> SignedNote {
        try checkText(text)
        let sig = signer.signature(for: Array(text.utf8))
        return SignedNote(text: text, signatures: [Signature(name: signer.name, keyID: signer.keyID, signature: sig)])
    }

    public var formatted: String {
        var out = text + "\n"
        for s in signatures {
            out += "\(SignedNote.dash) \(s.name) \((s.keyID + s.signature).base64String)\n"
        }
        return out
    }

    public static func parse(_ note: String) throws(NoteKeyError) -> SignedNote {
        guard let split = note.range(of: "\n\n", options: .backwards) else { throw NoteKeyError("malformed note: no signature block") }
        // The text is everything up to and including the newline before the blank line.
        let text = String(note[..<split.lowerBound]) + "\n"
        try checkText(text)
        let block = note[split.upperBound...]
        guard block.hasSuffix("\n") else { throw NoteKeyError("malformed note: signature block must end with a newline") }
        var signatures: [Signature] = []
        for line in block.dropLast().split(separator: "\n", omittingEmptySubsequences: false) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 3, fields[0] == dash, let blob = Base64.decode(fields[2]), blob.count > 4 else {
                throw NoteKeyError("malformed signature line")
            }
            signatures.append(Signature(name: String(fields[1]), keyID: Array(blob.prefix(4)), signature: Array(blob.dropFirst(4))))
        }
        guard !signatures.isEmpty else { throw NoteKeyError("note has no signatures") }
        return SignedNote(text: text, signatures: signatures)
    }

    /// Checks the signature made by `verifier`'s key; others (witness cosignatures) are ignored.
    public func verify(_ verifier: NoteVerifier) throws(NoteKeyError) {
        let ours = signatures.filter { $0.name == verifier.name && $0.keyID == verifier.keyID }
        guard !ours.isEmpty else { throw NoteKeyError("note is not signed by \(verifier.name)") }
        guard ours.count == 1 else { throw NoteKeyError("note carries more than one signature by \(verifier.name)") }
        guard verifier.isValidSignature(ours[0].signature, for: Array(text.utf8)) else {
            throw NoteKeyError("invalid signature by \(verifier.name)")
        }
    }

    static func checkText(_ text: String) throws(NoteKeyError) {
        guard text.hasSuffix("\n"), !text.hasPrefix("\n"), !text.contains("\n\n") else {
            throw NoteKeyError("malformed note text")
        }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" }) else {
            throw NoteKeyError("note text contains control characters")
        }
    }
}
