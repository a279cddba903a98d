import MedLedgerCore

/// What `GET /chain/verify` found over `from…to`: how much was checked, the anchors, and every
/// problem (the first `problemLimit` of them) by the seq it concerns.
struct ChainReport: Sendable {
    static let problemLimit = 100

    var from: Int64
    var to: Int64
    var checked: Int64 = 0
    /// The stored hash of the last event checked.
    var head: [UInt8]?
    var anchorsChecked = 0
    var lastAnchoredSeq: Int64?
    /// Audit's anchor rows whose entry the ledger was seen to hold, byte for byte.
    var confirmedInLedger = 0
    /// The ledger's tree size when its entries were read (nil when it could not be).
    var ledgerTreeSize: Int64?
    /// Why the ledger could not be asked: the anchors' proofs were still checked offline, but
    /// that the ledger holds them is unconfirmed, which is not proof of tampering.
    var ledgerUnreachable: String?
    private(set) var problems: [(seq: Int64, problem: String)] = []
    private(set) var problemCount = 0

    init(from: Int64, to: Int64) {
        self.from = from
        self.to = to
    }

    mutating func add(_ seq: Int64, _ problem: String) {
        problemCount += 1
        if problems.count < Self.problemLimit { problems.append((seq, problem)) }
    }

    var valid: Bool { problemCount == 0 }

    var json: JSONValue {
        var anchors: [(key: String, value: JSONValue)] = [
            ("checked", .number(String(anchorsChecked))), ("lastAnchoredSeq", lastAnchoredSeq.map { .number(String($0)) } ?? .null),
            ("confirmedInLedger", .number(String(confirmedInLedger))), ("ledgerTreeSize", ledgerTreeSize.map { .number(String($0)) } ?? .null),
        ]
        if let ledgerUnreachable { anchors.append(("ledgerUnreachable", .string(ledgerUnreachable))) }
        var members: [(key: String, value: JSONValue)] = [
            ("valid", .bool(valid)), ("from", .number(String(from))), ("to", .number(String(to))), ("checked", .number(String(checked))),
            ("head", head.map { .string($0.base64String) } ?? .null), ("anchors", .object(anchors)),
            ("problems", .array(problems.map { .object([("seq", .number(String($0.seq))), ("problem", .string($0.problem))]) })),
        ]
        if problemCount > problems.count { members.append(("problemsOmitted", .number(String(problemCount - problems.count)))) }
        return .object(members)
    }
}
