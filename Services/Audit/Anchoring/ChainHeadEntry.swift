import MedLedgerCore

/// The ledger entry that anchors the audit chain: `{"v":1,"type":"audit-chain-head","size":n,
/// "head":base64}` in RFC 8785 form, where `head` is the hash of event `size`. Once the ledger
/// holds it, no event up to `size` can change without contradicting it.
struct ChainHeadEntry: Sendable, Equatable {
    var size: Int64
    var head: [UInt8]

    /// Each size is anchored once, by whichever audit process gets there first.
    var idempotencyKey: String { "audit-head-\(size)" }

    var json: JSONValue {
        .object([("v", .number("1")), ("type", .string("audit-chain-head")), ("size", .number(String(size))), ("head", .string(head.base64String))])
    }

    /// The leaf data. Strings and integers below 2^53 only (seqs are bigints that never get there), so it cannot fail.
    var canonical: [UInt8] { (try? json.canonicalized(exactIntegers: true)) ?? [] }
}

extension ChainHeadEntry {
    /// Reads an entry as the ledger holds it; nil when it is not a chain head of this shape.
    init?(_ value: JSONValue) {
        guard case .object(let members) = value, members.count == 4, case .number(let v)? = value["v"], v == "1",
            value["type"] == .string("audit-chain-head"), case .number(let sizeText)? = value["size"], let size = Int64(sizeText), size > 0,
            let head = value["head"]?.stringValue.flatMap({ Base64.decode($0) }), head.count == ChainHash.size
        else { return nil }
        self.init(size: size, head: head)
    }
}
