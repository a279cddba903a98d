import MedLedgerCore

/// The outcome of `POST /check`: what was compared, and every inconsistency found.
struct CheckReport: Sendable {
    /// Listed findings are capped: a tampered leaf early in a big log breaks every later checkpoint.
    static let findingsLimit = 1000

    enum Kind: String, Sendable {
        case gap
        case leafHash = "leaf-hash"
        case checkpointRoot = "checkpoint-root"
        case checkpointSignature = "checkpoint-signature"
        case treeState = "tree-state"
        case tile
    }

    struct Finding: Sendable, Equatable {
        var kind: Kind
        var index: Int64?
        var size: Int64?
        var level: Int?
        var detail: String
    }

    var treeSize: Int64 = 0
    var leavesChecked: Int64 = 0
    var checkpointsChecked: Int64 = 0
    var tilesChecked: Int64 = 0
    private(set) var findings: [Finding] = []
    private(set) var findingsTotal = 0
    /// Every finding counted by kind, listed or not (for the log line).
    private(set) var counts: [Kind: Int] = [:]

    var ok: Bool { findingsTotal == 0 }
    var findingsTruncated: Bool { findingsTotal > findings.count }

    mutating func add(_ kind: Kind, index: Int64? = nil, size: Int64? = nil, level: Int? = nil, _ detail: String) {
        findingsTotal += 1
        counts[kind, default: 0] += 1
        guard findings.count < Self.findingsLimit else { return }
        findings.append(Finding(kind: kind, index: index, size: size, level: level, detail: detail))
    }

    /// `{"ok", "treeSize", "leavesChecked", "checkpointsChecked", "tilesChecked", "findings"[, "findingsTruncated"]}`.
    var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("ok", .bool(ok)),
            ("treeSize", .number(String(treeSize))),
            ("leavesChecked", .number(String(leavesChecked))),
            ("checkpointsChecked", .number(String(checkpointsChecked))),
            ("tilesChecked", .number(String(tilesChecked))),
            ("findings", .array(findings.map(\.json))),
        ]
        if findingsTruncated { members.append(("findingsTruncated", .bool(true))) }
        return .object(members)
    }
}

extension CheckReport.Finding {
    var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("kind", .string(kind.rawValue))]
        if let index { members.append(("index", .number(String(index)))) }
        if let size { members.append(("size", .number(String(size)))) }
        if let level { members.append(("level", .number(String(level)))) }
        members.append(("detail", .string(detail)))
        return .object(members)
    }
}
