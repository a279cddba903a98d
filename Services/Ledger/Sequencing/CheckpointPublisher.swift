import Foundation
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// A signed checkpoint as published.
struct PublishedCheckpoint: Sendable {
    var size: Int64
    var root: [UInt8]
    var note: String
}

/// Signs a checkpoint on its own short interval whenever the tree grew, and wakes requests
/// waiting for one (`?wait=checkpoint`). Before signing it proves the new tree consistent with
/// the last signed one, so the log never signs two inconsistent checkpoints, and the size never
/// goes backwards: both come from the database under an advisory lock, across restarts and
/// across several ledger processes.
actor CheckpointPublisher: Service {
    static let lockKey: Int64 = 0x4D65_644C_6467_0003

    let postgres: PostgresClient
    let tiles: TileStore
    let signer: NoteSigner
    let interval: Duration
    let readiness: Readiness
    let logger: Logger
    private(set) var latest: PublishedCheckpoint?
    private var waiters: [UUID: (size: Int64, continuation: CheckedContinuation<PublishedCheckpoint?, Never>)] = [:]

    init(postgres: PostgresClient, tiles: TileStore, signer: NoteSigner, interval: Duration, readiness: Readiness, logger: Logger) {
        self.postgres = postgres
        self.tiles = tiles
        self.signer = signer
        self.interval = interval
        self.readiness = readiness
        self.logger = logger
    }

    func run() async throws {
        // Shutdown cancels the loop; that is a normal end, not a failure of the service.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                if self.readiness.isReady {
                    do {
                        try await self.publishIfGrown()
                    } catch where !Task.isCancelled {
                        self.logger.error("checkpoint publication failed", metadata: ["error": "\(error)"])
                    }
                }
                try await Task.sleep(for: self.interval)
            }
        }
    }

    /// Waits until a checkpoint covers `size` entries; nil after `timeout`.
    func waitForCheckpoint(covering size: Int64, timeout: Duration) async -> PublishedCheckpoint? {
        if let latest, latest.size >= size { return latest }
        let id = UUID()
        return await withCheckedContinuation { continuation in
            waiters[id] = (size, continuation)
            Task {
                try? await Task.sleep(for: timeout)
                self.expire(id)
            }
        }
    }

    private func expire(_ id: UUID) {
        waiters.removeValue(forKey: id)?.continuation.resume(returning: nil)
    }

    /// The latest checkpoint, read from the database when this process has none yet.
    func current() async throws -> PublishedCheckpoint? {
        if let latest { return latest }
        let stored = try await Self.latestStored(postgres, logger: logger)
        if let stored { publish(stored) }
        return stored
    }

    func publishIfGrown() async throws {
        let signer = signer
        let tiles = tiles
        let logger = logger
        let checkpoint = try await Database.transaction(postgres, logger: logger) { connection -> PublishedCheckpoint? in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
            let (size, root) = try await Sequencer.treeState(connection, logger: logger)
            let previous = try await Self.latestStored(connection, logger: logger)
            if let previous, previous.size >= size { return previous }
            if let previous, previous.size > 0 {
                // Self-check against our own last signature before making another one.
                let proof = try await tiles.evaluate([ProofPlan.consistency(from: previous.size, to: size)], logger: logger)[0]
                try MerkleProofVerifier.verifyConsistency(from: previous.size, to: size, root1: previous.root, root2: root, proof: proof)
            }
            let body = Checkpoint(origin: signer.name, size: size, rootHash: root).body
            let note = try SignedNote.sign(text: body, with: signer).formatted
            try await connection.query(
                "INSERT INTO checkpoints (size, root, note) VALUES (\(size), \(ByteBuffer(bytes: root)), \(note))",
                logger: logger
            )
            return PublishedCheckpoint(size: size, root: root, note: note)
        }
        if let checkpoint { publish(checkpoint) }
    }

    private func publish(_ checkpoint: PublishedCheckpoint) {
        if let latest, latest.size >= checkpoint.size { return }
        latest = checkpoint
        for (id, waiter) in waiters where waiter.size <= checkpoint.size {
            waiters.removeValue(forKey: id)
            waiter.continuation.resume(returning: checkpoint)
        }
    }

    static func latestStored(_ connection: PostgresConnection, logger: Logger) async throws -> PublishedCheckpoint? {
        let rows = try await connection.query("SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1", logger: logger)
        for try await (size, root, note) in rows.decode((Int64, ByteBuffer, String).self) {
            return PublishedCheckpoint(size: size, root: Array(root.readableBytesView), note: note)
        }
        return nil
    }

    static func latestStored(_ client: PostgresClient, logger: Logger) async throws -> PublishedCheckpoint? {
        try await client.withConnection { connection in try await latestStored(connection, logger: logger) }
    }
}
