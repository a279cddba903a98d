import Foundation
import HTTPTypes
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// `$verify-all` (design guide, "Integrity and privacy", 5): every stored version against its
/// leaf (as `$verify` checks one), every version-shaped leaf of the ledger against a stored
/// version (a deleted version row leaves a leaf nobody stored), and the ledger's own check of
/// its tree against its signed checkpoints.
struct VerifyAllSweep: Sendable {
    let deps: RecordsDependencies
    let logger: Logger
    static let findingLimit = 1000

    struct Report: Sendable {
        var versions = 0
        var verified = 0
        var pending = 0
        var erased = 0
        var leavesScanned = 0
        var ledgerTreeSize: Int64?
        var ledgerCheck = "unavailable"
        var findings: [String] = []
        var findingsTotal = 0
        var complete = true

        mutating func add(_ finding: String) {
            findingsTotal += 1
            if findings.count < VerifyAllSweep.findingLimit { findings.append(finding) }
        }

        var result: String { findingsTotal > 0 ? "findings" : complete ? "ok" : "incomplete" }
    }

    func run() async throws -> Report {
        var report = Report()
        try await sweepVersions(&report)
        guard let ledger = deps.ledger else {
            report.complete = false
            report.add("the ledger could not be checked: records has no credentials for it (OAUTH_CLIENT_ID)")
            return report
        }
        do {
            try await scanLeaves(&report)
        } catch {
            report.complete = false
            report.add("the ledger's entries could not be read: \(error)")
        }
        do {
            let answer = try await ledger.post(deps.config.ledger.url.appendingPathComponent("check"), json: .object([]), timeout: .minutes(10), logger: logger)
            let ok = answer["ok"] == .bool(true)
            report.ledgerCheck = ok ? "ok" : "findings"
            for finding in answer["findings"]?.arrayValue ?? [] {
                report.add("ledger: " + (finding["detail"]?.stringValue ?? "\(finding.serialized())"))
            }
            if !ok, (answer["findings"]?.arrayValue ?? []).isEmpty { report.add("ledger: its check failed without details") }
        } catch {
            report.complete = false
            report.add("the ledger's own check could not run: \(error)")
        }
        return report
    }

    /// Every version, in batches by `seq`, through the same checks as `$verify`.
    private func sweepVersions(_ report: inout Report) async throws {
        let verifier = VersionVerifier(deps: deps, logger: logger)
        var after: Int64 = 0
        while true {
            let batch = try await StoredVersion.decode(
                deps.postgres.query("SELECT \(unescaped: StoredVersion.columns) FROM resource_versions v WHERE v.seq > \(after) ORDER BY v.seq LIMIT 200", logger: logger))
            guard let last = batch.last else { return }
            after = last.seq
            for stored in batch {
                report.versions += 1
                let result: VersionVerification
                do {
                    result = try await verifier.verify(stored)
                } catch let problem as Problem where problem.status == .gone {
                    report.erased += 1
                    continue
                }
                switch result.verdict {
                case .verified: report.verified += 1
                case .pending: report.pending += 1
                case .mismatch:
                    for finding in result.findings { report.add("\(stored.versionReference): \(finding)") }
                }
            }
        }
    }

    /// The ledger's entry bundles (public C2SP tiles), 256 entries each: every version-shaped
    /// entry must carry the ref of a stored version.
    private func scanLeaves(_ report: inout Report) async throws {
        let scan = LedgerEntryScan(ledgerURL: deps.config.ledger.url)
        let size = try await scan.treeSize()
        report.ledgerTreeSize = size
        try await scan.forEachBundle(upTo: size) { firstLeaf, entries in
            var refs: [(Int64, [UInt8])] = []
            for (offset, bytes) in entries.enumerated() {
                if let value = try? JSONParser.parse(bytes), let entry = LedgerEntry(value) { refs.append((firstLeaf + Int64(offset), entry.ref)) }
            }
            report.leavesScanned += entries.count
            if !refs.isEmpty {
                let rows = try await deps.postgres.query(
                    "SELECT ref FROM resource_versions WHERE ref = ANY(\(refs.map { ByteBuffer(bytes: $0.1) }))", logger: logger)
                var stored = Set<[UInt8]>()
                for try await ref in rows.decode(ByteBuffer.self) { stored.insert(Array(ref.readableBytesView)) }
                for (leaf, ref) in refs where !stored.contains(ref) {
                    report.add("ledger leaf \(leaf) is a version entry that no stored version matches (a version row was deleted?)")
                }
            }
        }
    }
}
