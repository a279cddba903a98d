import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import PostgresNIO
import TestSupport
import Testing

/// `POST /check` on a clean log, and after each kind of tampering behind the API.
@Suite struct CheckTests {
    /// Batches ending at 10, 100, 256 and 300, each waited for: checkpoints at those sizes, one full
    /// level-0 tile (0/0), a partial one (0/1) and a level-1 tile (1/0).
    static let batchEnds = [10, 100, 256, 300]

    struct Finding: Equatable, CustomStringConvertible {
        var kind: String
        var index: Int64?
        var size: Int64?
        var level: Int64?
        var description: String {
            "\(kind) index=\(index.map(String.init) ?? "-") size=\(size.map(String.init) ?? "-") level=\(level.map(String.init) ?? "-")"
        }
    }

    static func appendBatches(_ client: some TestClientProtocol, token: String) async throws {
        var start = 0
        for end in batchEnds {
            _ = try await client.append((start..<end).map { testEntry($0, tag: "check") }, token: token, wait: true)
            start = end
        }
    }

    /// Appends the batches, tampers with the database (triggers off), then checks.
    static func checked(_ name: String, tamper: [PostgresQuery] = []) async throws -> JSONValue {
        let fixture = try await LedgerFixture.make(name)
        let token = try await fixture.appendToken()
        return try await fixture.app().test(.router) { client in
            try await appendBatches(client, token: token)
            try await withPostgres(fixture.databaseURL) { postgres in
                try await postgres.query("ALTER TABLE leaves DISABLE TRIGGER leaves_append_only", logger: testLogger)
                for query in tamper { try await postgres.query(query, logger: testLogger) }
            }
            return try await client.check(token: token)
        }
    }

    static func findings(_ report: JSONValue) -> [Finding] {
        (report["findings"]?.arrayValue ?? []).map {
            Finding(kind: $0["kind"]?.stringValue ?? "?", index: $0["index"]?.int64, size: $0["size"]?.int64, level: $0["level"]?.int64)
        }
    }

    @Test func aCleanLogChecksOut() async throws {
        let fixture = try await LedgerFixture.make("checkclean")
        let token = try await fixture.appendToken()
        let admin = try await fixture.tokens.token(role: "admin", scope: "user/Practitioner.cruds medledger/verify-all")
        try await fixture.app().test(.router) { client in
            // Even the empty log (perhaps with a signed size-0 checkpoint) is consistent.
            let empty = try await client.check(token: admin)
            #expect(empty["ok"] == .bool(true))
            #expect(empty["treeSize"]?.int64 == 0)
            try await Self.appendBatches(client, token: token)
            let stored = try await withPostgres(fixture.databaseURL) { postgres in
                var count: Int64 = 0
                for try await n in try await postgres.query("SELECT count(*) FROM checkpoints", logger: testLogger).decode(Int64.self) { count = n }
                return count
            }
            #expect(stored >= Int64(Self.batchEnds.count))
            for bearer in [token, admin] {
                let report = try await client.check(token: bearer)
                #expect(report["ok"] == .bool(true))
                #expect(Self.findings(report) == [])
                #expect(report["treeSize"]?.int64 == 300)
                #expect(report["leavesChecked"]?.int64 == 300)
                #expect(report["checkpointsChecked"]?.int64 == stored)
                #expect(report["tilesChecked"]?.int64 == 3)
                #expect(report["findingsTruncated"] == nil)
            }
        }
    }

    @Test func anEditedEntryIsALeafHashFinding() async throws {
        let report = try await Self.checked("checkleaf", tamper: [#"UPDATE leaves SET data = '{"n":-1}' WHERE idx = 100"#])
        #expect(report["ok"] == .bool(false))
        let findings = Self.findings(report)
        // The tree recomputed from the edited data no longer matches what was signed and stored
        // from there on: the tiles above the entry, the checkpoints at 256 and 300, the tree state.
        #expect(
            findings == [
                Finding(kind: "leaf-hash", index: 100), Finding(kind: "tile", index: 0, level: 0), Finding(kind: "checkpoint-root", size: 256),
                Finding(kind: "checkpoint-root", size: 300), Finding(kind: "tree-state", size: 300), Finding(kind: "tile", index: 0, level: 1),
            ]
        )
    }

    @Test func anEntryEditedWithItsHashContradictsTheCheckpoints() async throws {
        let data = Array(#"{"n":-1}"#.utf8)
        let report = try await Self.checked(
            "checkrehash",
            tamper: [
                "UPDATE leaves SET data = \(ByteBuffer(bytes: data)), leaf_hash = \(ByteBuffer(bytes: MerkleTree.leafHash(data))) WHERE idx = 100"
            ]
        )
        #expect(report["ok"] == .bool(false))
        let findings = Self.findings(report)
        #expect(!findings.contains { $0.kind == "leaf-hash" })
        let roots = findings.filter { $0.kind == "checkpoint-root" }.compactMap(\.size)
        #expect(roots.contains(256) && roots.contains(300))
        #expect(!roots.contains { $0 <= 100 })
        #expect(findings.contains(Finding(kind: "tree-state", size: 300)))
        #expect(findings.contains(Finding(kind: "tile", index: 0, level: 0)))
    }

    @Test func anOverwrittenTileIsATileFinding() async throws {
        let report = try await Self.checked(
            "checktile", tamper: [#"UPDATE tiles SET hashes = overlay(hashes placing '\xffff' from 33) WHERE level = 0 AND idx = 0"#]
        )
        #expect(report["ok"] == .bool(false))
        #expect(Self.findings(report) == [Finding(kind: "tile", index: 0, level: 0)])
        let detail = report["findings"]?.arrayValue?.first?["detail"]?.stringValue ?? ""
        #expect(detail.contains("leaf 1"), "\(detail)")
    }

    @Test func missingEntriesAreGaps() async throws {
        let last = try await Self.checked("checktail", tamper: ["DELETE FROM leaves WHERE idx = 299"])
        #expect(last["ok"] == .bool(false))
        #expect(last["leavesChecked"]?.int64 == 299)
        #expect(Self.findings(last) == [Finding(kind: "gap", index: 299), Finding(kind: "tree-state", size: 300)])

        let middle = try await Self.checked("checkgap", tamper: ["DELETE FROM leaves WHERE idx = 50"])
        #expect(Self.findings(middle) == [Finding(kind: "gap", index: 50), Finding(kind: "tree-state", size: 300)])

        // A stray row past the tree: the tree of tree_state's size is still checked (and fine).
        let stray = try await Self.checked(
            "checkstray",
            tamper: [#"INSERT INTO leaves (idx, idempotency_key, data, leaf_hash) SELECT 301, 'stray', data, leaf_hash FROM leaves WHERE idx = 0"#]
        )
        #expect(Self.findings(stray) == [Finding(kind: "gap", index: 300), Finding(kind: "tree-state", size: 300)])
        #expect(stray["tilesChecked"]?.int64 == 3)
    }

    @Test func checkpointsNotSignedByTheLogAreFound() async throws {
        let stranger = try NoteSigner.generate(name: "test.medledger.local/ledger")
        let fixture = try await LedgerFixture.make("checksig")
        let token = try await fixture.appendToken()
        try await fixture.app().test(.router) { client in
            _ = try await client.append((0..<5).map { testEntry($0, tag: "sig") }, token: token, wait: true)
            let root = MerkleReference.root(try (0..<3).map { try leafData(testEntry($0, tag: "sig").entry) }[...])
            // Same origin, right root, wrong key; and a well signed checkpoint beyond the tree.
            let forged = try SignedNote.sign(text: Checkpoint(origin: stranger.name, size: 3, rootHash: root).body, with: stranger).formatted
            let beyond = try SignedNote.sign(text: Checkpoint(origin: fixture.signer.name, size: 9, rootHash: root).body, with: fixture.signer)
            _ = try await withPostgres(fixture.databaseURL) { postgres in
                try await postgres.query(
                    """
                    INSERT INTO checkpoints (size, root, note) VALUES (3, \(ByteBuffer(bytes: root)), \(forged)),
                        (9, \(ByteBuffer(bytes: root)), \(beyond.formatted)) ON CONFLICT DO NOTHING
                    """,
                    logger: testLogger
                )
            }
            let report = try await client.check(token: token)
            #expect(Self.findings(report) == [Finding(kind: "checkpoint-signature", size: 3), Finding(kind: "checkpoint-root", size: 9)])
        }
    }

    @Test func appendsDuringACheckCauseNoFindings() async throws {
        let fixture = try await LedgerFixture.make("checkbusy")
        let token = try await fixture.appendToken()
        try await fixture.app().test(.router) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for batch in 0..<40 {
                        _ = try await client.append((batch * 25..<(batch + 1) * 25).map { testEntry($0, tag: "busy") }, token: token)
                    }
                }
                group.addTask {
                    for _ in 0..<15 {
                        let report = try await client.check(token: token)
                        #expect(report["ok"] == .bool(true), "\(Self.findings(report))")
                    }
                }
                try await group.waitForAll()
            }
            let report = try await client.check(token: token)
            #expect(report["ok"] == .bool(true))
            #expect(report["leavesChecked"]?.int64 == 1000)
        }
    }

    @Test func aTreePastTheSecondTileLevelAndTruncatedFindings() async throws {
        let fixture = try await LedgerFixture.make("checkbig")
        let token = try await fixture.appendToken()
        let total = 65_536 + 300
        try await fixture.app().test(.router) { client in
            // Chunks of 1000 (the leaf query reads 10,000) whose ends fall off the tile boundaries.
            for start in stride(from: 0, to: total, by: 1000) {
                _ = try await client.append((start..<min(start + 1000, total)).map { testEntry($0, tag: "big") }, token: token)
            }
            _ = try await client.append([testEntry(total - 1, tag: "big")], token: token, wait: true)
            let clean = try await client.check(token: token)
            #expect(clean["ok"] == .bool(true), "\(Self.findings(clean).prefix(5))")
            #expect(clean["leavesChecked"]?.int64 == Int64(total))
            // Level 0: 257 full + 1 partial; level 1: 1 full + 1 partial; level 2: 1 partial.
            #expect(clean["tilesChecked"]?.int64 == 261)

            _ = try await withPostgres(fixture.databaseURL) { postgres in
                try await postgres.query("ALTER TABLE leaves DISABLE TRIGGER leaves_append_only", logger: testLogger)
                try await postgres.query("UPDATE leaves SET data = '{}' WHERE idx BETWEEN 20000 AND 21499", logger: testLogger)
            }
            let broken = try await client.check(token: token)
            let findings = Self.findings(broken)
            #expect(findings.count == 1000)
            #expect(broken["findingsTruncated"] == .bool(true))
            #expect(findings.first == Finding(kind: "leaf-hash", index: 20_000))
        }
    }

    @Test func checkingNeedsAnAppendOrVerifyAllToken() async throws {
        let fixture = try await LedgerFixture.make("checkauth")
        let cases: [(String?, HTTPResponse.Status)] = [
            (nil, .unauthorized),
            ("Bearer not.a.jwt", .unauthorized),
            ("Bearer " + (try await fixture.tokens.token(scope: "medledger/audit.write user/Practitioner.cruds")), .forbidden),
        ]
        try await fixture.app().test(.router) { client in
            for (authorization, status) in cases {
                var headers: HTTPFields = [:]
                if let authorization { headers[.authorization] = authorization }
                let response = try await client.execute(uri: "/check", method: .post, headers: headers)
                try BadInputTests.expectProblem(response, status, "\(status)")
            }
        }
    }
}

extension TestClientProtocol {
    func check(token: String) async throws -> JSONValue {
        let response = try await execute(uri: "/check", method: .post, headers: [.authorization: "Bearer \(token)"])
        #expect(response.status == .ok, "check answered \(response.status): \(String(buffer: response.body))")
        #expect(response.headers[.contentType] == "application/json")
        return try JSONParser.parse(response.body.readableBytesView)
    }
}
