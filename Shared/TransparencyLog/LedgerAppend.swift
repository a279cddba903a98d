public import Foundation
public import Logging
import NIOCore

/// One `POST /entries?wait=checkpoint` to the ledger with idempotency keys, and the check of its
/// answer: the right keys in order, and each entry's bytes proven under the signed checkpoint.
/// A ledger that answers wrongly gets nothing stored. Records (version anchors) and audit
/// (chain heads) append this way.
public struct LedgerAppend: Sendable {
    public struct Pending: Sendable {
        public var key: String
        /// The entry's RFC 8785 text: its bytes are the leaf.
        public var entry: String

        public init(key: String, entry: String) {
            self.key = key
            self.entry = entry
        }
    }

    /// Where each entry landed: leaf indices and proofs in the order sent, under one checkpoint.
    public struct Anchors: Sendable {
        public var indices: [Int64]
        public var proofs: [[UInt8]]
        public var size: Int64
        public var note: String
    }

    public struct BadAnswer: Error, CustomStringConvertible {
        public var description: String
    }

    public let client: ServiceClient
    public let ledger: LedgerPeer

    public init(client: ServiceClient, ledger: LedgerPeer) {
        self.client = client
        self.ledger = ledger
    }

    public func append(_ pending: [Pending], logger: Logger) async throws -> Anchors {
        let body = JSONValue.object([
            (
                "entries",
                .array(try pending.map { row in .object([("idempotencyKey", .string(row.key)), ("entry", try JSONParser.parse(Array(row.entry.utf8)))]) })
            )
        ])
        let answer = try await client.post(ledger.entriesURL, json: body, timeout: .seconds(30), logger: logger)
        return try anchors(answer, for: pending)
    }

    private func anchors(_ answer: JSONValue, for pending: [Pending]) throws -> Anchors {
        guard let note = answer["checkpoint"]?.stringValue, let entries = answer["entries"]?.arrayValue, entries.count == pending.count else {
            throw BadAnswer(description: "the ledger's answer lacks the checkpoint or some entries")
        }
        var result = Anchors(indices: [], proofs: [], size: 0, note: note)
        for (row, answered) in zip(pending, entries) {
            guard answered["idempotencyKey"]?.stringValue == row.key, case .number(let text)? = answered["index"], let index = Int64(text),
                let hashes = answered["inclusionProof"]?.arrayValue?.map({ $0.stringValue.flatMap { Base64.decode($0) } ?? [] })
            else { throw BadAnswer(description: "the ledger's answer for \(row.key) is malformed") }
            do {
                result.size = try AnchorProof.check(entry: Array(row.entry.utf8), index: index, proof: hashes, checkpoint: note, verifier: ledger.verifier).size
            } catch {
                throw BadAnswer(description: "the ledger's proof for \(row.key) does not verify: \(error.message)")
            }
            result.indices.append(index)
            result.proofs.append(hashes.flatMap { $0 })
        }
        return result
    }
}
