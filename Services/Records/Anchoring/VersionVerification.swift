import Crypto
import Foundation
import HTTPTypes
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// `$verify` of one stored version (design guide, "Integrity and privacy of every version", 5):
/// recompute the commitment from the stored bytes, re-derive the search columns from the
/// decrypted body, and check both against what is stored and what the ledger holds. Anything
/// that does not match is a finding; findings make the verdict `mismatch`, the tamper alarm.
struct VersionVerification: Sendable {
    enum Verdict: String, Sendable {
        case verified, pending, mismatch
    }

    var target: String
    var verdict: Verdict
    /// Recomputed from the stored bytes (nil when the body could not be opened at all).
    var commitment: [UInt8]?
    var salt: [UInt8]?
    var commitmentMatchesStored: Bool
    /// nil while pending.
    var commitmentMatchesLedger: Bool?
    /// nil for a deletion (no body to derive them from) or an unreadable body.
    var searchColumnsMatch: Bool?
    /// The entry as sent to the ledger.
    var entry: String?
    var leafIndex: Int64?
    var checkpoint: String?
    var tlogProof: String?
    var findings: [String]
}

/// The stored anchoring facts of a version.
private struct AnchorRow {
    var commitment: [UInt8]?
    var ref: [UInt8]?
    var sealedSalt: [UInt8]?
    var entry: String?
    var leafIndex: Int64?
    var proof: [UInt8]?
    var checkpoint: String?
}

struct VersionVerifier: Sendable {
    let deps: RecordsDependencies
    let logger: Logger

    func verify(_ stored: StoredVersion) async throws -> VersionVerification {
        let target = stored.versionReference
        guard let key = try await deps.keys.existingKey(for: stored.keyOwner, logger: logger) else {
            throw Problem(.gone, "\(stored.reference) was erased (its data key was destroyed); its ledger entry stays, unverifiable by design")
        }
        let anchor = try await anchorRow(seq: stored.seq)
        var findings: [String] = []
        var report = VersionVerification(
            target: target, verdict: .pending, commitment: nil, salt: nil, commitmentMatchesStored: false, commitmentMatchesLedger: nil,
            searchColumnsMatch: nil, entry: anchor.entry, leafIndex: anchor.leafIndex, checkpoint: anchor.checkpoint, tlogProof: nil, findings: [])

        guard let sealedSalt = anchor.sealedSalt, let salt = try? ResourceCipher.open(sealedSalt, key: key, context: VersionAnchor.saltContext(target)) else {
            return finish(report, findings: ["the version's salt is missing or fails authentication"])
        }
        report.salt = salt
        var recomputedEntry: LedgerEntry?
        switch try await recompute(stored, key: key, salt: salt) {
        case .failure(let finding):
            findings.append(finding.message)
        case .success(let (commitment, lastUpdated, facts)):
            report.commitment = commitment
            report.commitmentMatchesStored = commitment == anchor.commitment
            if !report.commitmentMatchesStored { findings.append("the commitment recomputed from the stored bytes differs from the stored commitment") }
            let entry = LedgerEntry(commitment: commitment, ref: LedgerEntry.ref(salt: salt, versionReference: target), time: lastUpdated)
            recomputedEntry = entry
            if entry.ref != anchor.ref { findings.append("the stored ref differs from the one recomputed from the salt") }
            if anchor.entry.map({ Array($0.utf8) }) != entry.canonical {
                findings.append("the ledger entry in the outbox differs from the one recomputed from the stored version")
            }
            if let facts {
                let columnFindings = try await searchColumnFindings(stored, facts: facts)
                report.searchColumnsMatch = columnFindings.isEmpty
                findings += columnFindings
            }
        }
        if let index = anchor.leafIndex, let proof = anchor.proof, let note = anchor.checkpoint {
            let hashes = AnchorProof.split(proof)
            report.tlogProof = TlogProof(index: index, hashes: hashes, checkpoint: note).formatted
            if let entry = recomputedEntry {
                do {
                    _ = try AnchorProof.check(entry: entry.canonical, index: index, proof: hashes, checkpoint: note, verifier: deps.config.ledger.verifier)
                    report.commitmentMatchesLedger = true
                } catch {
                    report.commitmentMatchesLedger = false
                    findings.append("the version does not match its ledger leaf \(index): \(error.message)")
                }
            }
            report.verdict = .verified
        } else if anchor.leafIndex != nil {
            findings.append("the anchor of leaf \(anchor.leafIndex!) lacks its proof or checkpoint")
        }
        return finish(report, findings: findings)
    }

    private func finish(_ report: VersionVerification, findings: [String]) -> VersionVerification {
        var report = report
        report.findings = findings
        if !findings.isEmpty { report.verdict = .mismatch }
        return report
    }

    private func anchorRow(seq: Int64) async throws -> AnchorRow {
        let rows = try await deps.postgres.query(
            """
            SELECT v.commitment, v.ref, v.sealed_salt, o.entry, o.leaf_index, o.proof, c.note
            FROM resource_versions v LEFT JOIN ledger_outbox o ON o.seq = v.seq LEFT JOIN ledger_checkpoints c ON c.size = o.checkpoint_size
            WHERE v.seq = \(seq)
            """,
            logger: logger)
        for try await c in rows.decode((ByteBuffer?, ByteBuffer?, ByteBuffer?, String?, Int64?, ByteBuffer?, String?).self) {
            func bytes(_ buffer: ByteBuffer?) -> [UInt8]? { buffer.map { Array($0.readableBytesView) } }
            return AnchorRow(
                commitment: bytes(c.0), ref: bytes(c.1), sealedSalt: bytes(c.2), entry: c.3, leafIndex: c.4, proof: bytes(c.5), checkpoint: c.6)
        }
        return AnchorRow()
    }

    /// The commitment recomputed from the stored bytes, the version's `meta.lastUpdated` and the
    /// facts its body yields; a body or content that fails authentication is a finding, not an error.
    private func recompute(_ stored: StoredVersion, key: SymmetricKey, salt: [UInt8]) async throws -> Result<(commitment: [UInt8], time: String, facts: IndexedFacts?), Finding> {
        let lastUpdated = FHIRDate.instantText(stored.lastUpdatedDate)
        guard let sealed = stored.sealedBody else {
            guard stored.deleted else { return .failure(Finding("the version's body is missing")) }
            return .success((LedgerEntry.commitment(salt: salt, canonical: VersionAnchor.deletionBytes), lastUpdated, nil))
        }
        let body: [UInt8]
        do {
            body = try ResourceCipher.open(sealed, key: key, context: stored.versionReference)
        } catch {
            return .failure(Finding("the stored body fails authentication (changed, or moved from another version)"))
        }
        guard let resource = try? JSONParser.parse(body) else { return .failure(Finding("the stored body is not JSON")) }
        let facts = SearchIndexer.facts(resource, type: stored.type, id: stored.id, base: deps.base)
        let time = resource["meta"]?["lastUpdated"]?.stringValue ?? lastUpdated
        guard stored.type == .binary else {
            guard let canonical = try? resource.canonicalized() else { return .failure(Finding("the stored body has no RFC 8785 form")) }
            return .success((LedgerEntry.commitment(salt: salt, canonical: canonical), time, facts))
        }
        // Binary commits to its content, hashed chunk by chunk as it is read.
        var hasher = CommitmentHasher(salt: salt)
        do {
            try await BinaryStore.read(stored, key: key, postgres: deps.postgres, logger: logger) { piece in
                piece.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            }
        } catch {
            return .failure(Finding("the stored content fails authentication or is incomplete"))
        }
        return .success((hasher.finalize(), time, facts))
    }

    /// The search columns stored for this version (and, if it is current, the search index)
    /// against those derived from its body now.
    private func searchColumnFindings(_ stored: StoredVersion, facts: IndexedFacts) async throws -> [String] {
        var findings: [String] = []
        if stored.patient != facts.patient { findings.append("the stored patient column differs from the body's") }
        if stored.status != facts.status { findings.append("the stored status column differs from the body's") }
        let type = stored.type.rawValue
        let current = try await deps.postgres.query(
            "SELECT version, deleted, patient, status, sort_date, sort_issued FROM resources WHERE type = \(type) AND id = \(stored.id)",
            logger: logger
        ).collect()
        guard let row = try current.first?.decode((Int, Bool, String?, String?, Int64, Int64).self), row.0 == stored.version else {
            return findings
        }
        if row.1 || row.2 != facts.patient || row.3 != facts.status || row.4 != facts.sortDate || row.5 != facts.sortIssued {
            findings.append("the current resource's search columns differ from those derived from its body")
        }
        let indexRows = try await deps.postgres.query(
            "SELECT param, system, code, ref, norm, raw, low, high FROM search_index WHERE type = \(type) AND id = \(stored.id)", logger: logger)
        var stored: [IndexRow] = []
        for try await c in indexRows.decode((String, String?, String?, String?, String?, String?, Int64?, Int64?).self) {
            stored.append(IndexRow(param: c.0, system: c.1, code: c.2, ref: c.3, norm: c.4, raw: c.5, low: c.6, high: c.7))
        }
        if Self.sorted(stored) != Self.sorted(facts.rows) {
            findings.append("the search index differs from the values derived from the body")
        }
        return findings
    }

    private static func sorted(_ rows: [IndexRow]) -> [String] {
        rows.map { "\($0.param)|\($0.system ?? "")|\($0.code ?? "")|\($0.ref ?? "")|\($0.norm ?? "")|\($0.raw ?? "")|\($0.low.map(String.init) ?? "")|\($0.high.map(String.init) ?? "")" }
            .sorted()
    }
}

/// A reason a version does not verify.
struct Finding: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
