import HTTPTypes
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO
import Synchronization

/// The ledger's own consistency check (`POST /check`): recomputes the tree from the stored leaf
/// data and compares it with everything stored and signed: leaf hashes, checkpoints (root column,
/// signed note, signature), tree_state and tiles. It streams: memory holds one chunk of leaf
/// hashes, the frontier and a chunk of stored tiles per level, whatever the size of the log.
final class TreeCheck: Sendable {
    static let leafChunk = 10_000

    let postgres: PostgresClient
    let verifier: NoteVerifier
    /// A check holds a pooled connection for its whole run: one at a time, so checks cannot starve the sequencer.
    private let running = Mutex(false)

    init(postgres: PostgresClient, verifier: NoteVerifier) {
        self.postgres = postgres
        self.verifier = verifier
    }

    func run(logger: Logger) async throws -> CheckReport {
        let claimed = running.withLock { busy in
            defer { busy = true }
            return !busy
        }
        guard claimed else { throw Problem(.serviceUnavailable, "a check is already running; retry when it has finished") }
        defer { running.withLock { $0 = false } }
        let verifier = verifier
        return try await Database.transaction(postgres, logger: logger) { connection in
            // One snapshot for every query, so appends committing meanwhile are not half seen.
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
            let (size, root) = try await Sequencer.treeState(connection, logger: logger)
            var walk = TreeWalk(connection: connection, verifier: verifier, logger: logger, stateSize: size, stateRoot: root)
            try await walk.checkLeaves()
            try await walk.finish()
            return walk.report
        }
    }
}

/// One pass over the leaves in index order, with the stored checkpoints and tiles read alongside.
private struct TreeWalk {
    let connection: PostgresConnection
    let verifier: NoteVerifier
    let logger: Logger
    let stateRoot: [UInt8]
    var report = CheckReport()
    /// The tree recomputed from the leaf data, over the contiguous leaves below the tree_state size.
    var frontier = TreeFrontier()
    var nextIndex: Int64 = 0
    /// Set at the first gap: nothing past it can be recomputed.
    var broken = false
    var checkpoints: StoredRows<StoredCheckpoint>
    var tiles: [Int: StoredRows<StoredTile>] = [:]

    var size: Int64 { report.treeSize }

    init(connection: PostgresConnection, verifier: NoteVerifier, logger: Logger, stateSize: Int64, stateRoot: [UInt8]) {
        self.connection = connection
        self.verifier = verifier
        self.logger = logger
        self.stateRoot = stateRoot
        report.treeSize = stateSize
        checkpoints = .checkpoints(on: connection, logger: logger)
    }

    /// Reads the leaves a chunk at a time; the data of each row is hashed and dropped at once.
    mutating func checkLeaves() async throws {
        var from: Int64 = 0
        while true {
            var hashes: [(index: Int64, hash: [UInt8])] = []
            hashes.reserveCapacity(TreeCheck.leafChunk)
            let rows = try await connection.query(
                "SELECT idx, data, leaf_hash FROM leaves WHERE idx >= \(from) ORDER BY idx LIMIT \(TreeCheck.leafChunk)",
                logger: logger
            )
            for try await (index, data, storedHash) in rows.decode((Int64, ByteBuffer, ByteBuffer).self) {
                let hash = MerkleTree.leafHash(data.readableBytesView)
                if !storedHash.readableBytesView.elementsEqual(hash) {
                    report.add(.leafHash, index: index, "leaf \(index): the stored leaf_hash is not SHA-256(0x00 ‖ data); data or hash was changed")
                }
                hashes.append((index, hash))
            }
            report.leavesChecked += Int64(hashes.count)
            guard let last = hashes.last else { return }
            from = last.index + 1
            try await recompute(hashes)
            if hashes.count < TreeCheck.leafChunk { return }
        }
    }

    private mutating func recompute(_ hashes: [(index: Int64, hash: [UInt8])]) async throws {
        var run: [[UInt8]] = []
        for (index, hash) in hashes {
            if index != nextIndex {
                // A gap only among leaves beyond tree_state's size leaves the tree of that size intact.
                let breaks = !broken && nextIndex < size
                let missing = index - 1 == nextIndex ? "leaf \(nextIndex) is missing" : "leaves \(nextIndex)…\(index - 1) are missing"
                let consequence = breaks ? "; the tree cannot be recomputed past it: later checkpoints, tiles and tree_state were not compared" : ""
                report.add(.gap, index: nextIndex, missing + consequence)
                if breaks {
                    try await grow(run)
                    run = []
                    broken = true
                }
            }
            nextIndex = index + 1
            if !broken && index < size { run.append(hash) }
        }
        try await grow(run)
    }

    /// Appends leaf hashes to the recomputed tree, stopping at every stored checkpoint's size to
    /// compare roots, and compares every tile that fills up.
    private mutating func grow(_ hashes: [[UInt8]]) async throws {
        var start = 0
        while true {
            try await checkCheckpoints(upTo: frontier.size)
            guard start < hashes.count else { return }
            var count = hashes.count - start
            if let next = try await checkpoints.peek()?.size { count = min(count, Int(next - frontier.size)) }
            for write in frontier.append(Array(hashes[start..<start + count])) where write.hashes.count == TilePath.width {
                try await compareTile(write.key, write.hashes)
            }
            start += count
        }
    }

    /// Checks the stored checkpoints up to `size` (the recomputed tree's size: the last has that size).
    private mutating func checkCheckpoints(upTo size: Int64) async throws {
        while let checkpoint = try await checkpoints.peek(), checkpoint.size <= size {
            _ = try await checkpoints.next()
            check(checkpoint, recomputedRoot: checkpoint.size == frontier.size ? frontier.root : nil)
        }
    }

    /// Without a recomputed root (past a gap) only the signature and the note's own fields are checked.
    private mutating func check(_ checkpoint: StoredCheckpoint, recomputedRoot: [UInt8]?) {
        report.checkpointsChecked += 1
        let name = "checkpoint \(checkpoint.size)"
        var problems: [String] = []
        if checkpoint.size > size { problems.append("it is larger than the tree (tree_state size \(size))") }
        if let recomputedRoot, checkpoint.root != recomputedRoot {
            problems.append("its root column differs from the root recomputed from the leaves")
        }
        do {
            let note = try SignedNote.parse(checkpoint.note)
            do {
                try note.verify(verifier)
            } catch {
                report.add(.checkpointSignature, size: checkpoint.size, "\(name): \(error)")
            }
            let body = try Checkpoint.parse(body: note.text)
            if body.origin != verifier.name {
                report.add(.checkpointSignature, size: checkpoint.size, "\(name): the note is for origin \(body.origin), not \(verifier.name)")
            }
            if body.size != checkpoint.size {
                problems.append("its signed note is for size \(body.size)")
            } else if let recomputedRoot, body.rootHash != recomputedRoot {
                problems.append("the root in its signed note differs from the root recomputed from the leaves")
            } else if recomputedRoot == nil, body.rootHash != checkpoint.root {
                problems.append("the root in its signed note differs from its root column")
            }
        } catch {
            report.add(.checkpointSignature, size: checkpoint.size, "\(name): the stored note is not a signed checkpoint (\(error))")
        }
        if !problems.isEmpty { report.add(.checkpointRoot, size: checkpoint.size, "\(name): " + problems.joined(separator: "; ")) }
    }

    /// Tiles of a level arrive in index order, so each level is one forward pass over its stored tiles.
    private mutating func compareTile(_ key: TileKey, _ hashes: [[UInt8]]) async throws {
        report.tilesChecked += 1
        let name = "tile \(key.level)/\(key.index)"
        guard let stored = try await storedTile(key) else {
            report.add(.tile, index: key.index, level: key.level, "\(name) is missing; the tree of size \(size) has \(hashes.count) hashes in it")
            return
        }
        let expected = hashes.flatMap { $0 }
        guard stored != expected else { return }
        if stored.count != expected.count {
            report.add(
                .tile, index: key.index, level: key.level,
                "\(name) holds \(stored.count) bytes; the tree of size \(size) has \(hashes.count) hashes (\(expected.count) bytes) in it"
            )
            return
        }
        let first = zip(stored, expected).enumerated().first { $0.element.0 != $0.element.1 }!.offset / MerkleTree.hashSize
        let leaf = key.level == 0 ? " (leaf \(key.index * Int64(TilePath.width) + Int64(first)))" : ""
        report.add(.tile, index: key.index, level: key.level, "\(name) differs from the recomputed tile, first at hash \(first)\(leaf)")
    }

    /// The stored tile `key`, or nil; stored tiles before it (which the tree does not have) are findings.
    private mutating func storedTile(_ key: TileKey) async throws -> [UInt8]? {
        var rows = tiles.removeValue(forKey: key.level) ?? .tiles(level: key.level, from: 0, on: connection, logger: logger)
        defer { tiles[key.level] = rows }
        while let tile = try await rows.peek(), tile.index <= key.index {
            _ = try await rows.next()
            if tile.index == key.index { return tile.bytes }
            unexpected(level: key.level, tile.index)
        }
        return nil
    }

    private mutating func unexpected(level: Int, _ index: Int64) {
        report.add(.tile, index: index, level: level, "tile \(level)/\(index) is stored but is not part of the tree of size \(size)")
    }

    /// After the last leaf: tree_state, the rightmost (partial) tiles, tiles the tree does not
    /// have, and the checkpoints not reached.
    mutating func finish() async throws {
        if !broken { try await checkCheckpoints(upTo: frontier.size) }
        if !broken && frontier.size == size {
            if frontier.root != stateRoot {
                report.add(.treeState, size: size, "tree_state's root differs from the root recomputed from the leaves at size \(size)")
            }
            try await finishTiles()
        } else if !broken {
            let missing = size - 1 == nextIndex ? "leaf \(nextIndex) is missing" : "leaves \(nextIndex)…\(size - 1) are missing"
            report.add(.gap, index: nextIndex, "\(missing): tree_state says the tree has \(size) leaves")
        }
        if report.leavesChecked != size {
            report.add(.treeState, size: size, "tree_state says the tree has \(size) leaves, but \(report.leavesChecked) are stored")
        }
        while let checkpoint = try await checkpoints.next() { check(checkpoint, recomputedRoot: nil) }
    }

    private mutating func finishTiles() async throws {
        let levels = frontier.partial.count
        for (level, hashes) in frontier.partial.enumerated() where !hashes.isEmpty {
            try await compareTile(TileKey(level: level, index: (size >> (8 * level)) >> 8), hashes)
        }
        for level in 0..<levels {
            // Past the tiles the tree has at this level (full ones, then a partial one).
            let count = size >> (8 * level)
            var rows = tiles[level] ?? .tiles(level: level, from: (count + 255) >> 8, on: connection, logger: logger)
            while let tile = try await rows.next() { unexpected(level: level, tile.index) }
        }
        let rows = try await connection.query(
            "SELECT level, count(*), min(idx) FROM tiles WHERE level >= \(Int32(levels)) GROUP BY level ORDER BY level",
            logger: logger
        )
        for try await (level, count, first) in rows.decode((Int32, Int64, Int64).self) {
            report.add(
                .tile, index: first, level: Int(level),
                "\(count) tile(s) are stored at level \(level) from index \(first) on, which the tree of size \(size) does not reach"
            )
        }
    }
}
