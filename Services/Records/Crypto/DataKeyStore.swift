import NIOCore
import HTTPTypes
import Crypto
import Foundation
import Logging
import MedLedgerCore
import PostgresNIO
import Synchronization

/// One AES-256 data key per patient (and one for non-patient data), stored wrapped by a
/// key-encryption key. Destroying a patient's key erases their data (crypto-shredding).
final class DataKeyStore: Sendable {
    /// The key owner for resources outside any patient compartment (Practitioner).
    static let sharedOwner = "shared"

    let postgres: PostgresClient
    let keys: KeyEncryptionKeys
    /// Unwrapped keys, so that a read costs no unwrap; bounded, because it holds secrets and
    /// there may be millions of patients. Entries expire, so that a key another records process
    /// destroyed stops working here too within `cacheLifetime`.
    private let cache = Mutex<[String: (key: SymmetricKey, loaded: ContinuousClock.Instant)]>([:])
    private static let cacheLimit = 50_000
    static let cacheLifetime = Duration.seconds(30)

    init(postgres: PostgresClient, keys: KeyEncryptionKeys) {
        self.postgres = postgres
        self.keys = keys
    }

    /// The owner's key, made on first use, in the transaction of the write that needs it: it
    /// commits or rolls back with the data sealed under it, and takes no second connection.
    func key(for owner: String, on connection: PostgresConnection, logger: Logger) async throws -> SymmetricKey {
        if let key = cached(owner) { return key }
        if let key = try await load(owner, on: connection, cache: true, logger: logger) { return key }
        let fresh = SymmetricKey(size: .bits256)
        let wrapped = try Self.wrap(fresh, owner: owner, kekID: keys.activeID, kek: keys.active)
        try await connection.query(
            "INSERT INTO data_keys (owner, kek_id, wrapped) VALUES (\(owner), \(keys.activeID), \(ByteBuffer(bytes: wrapped))) ON CONFLICT (owner) DO NOTHING",
            logger: logger
        )
        // Another transaction may have won the race (the insert waited for it): use what is
        // stored. Not cached yet: until this transaction commits, a rollback could remove it.
        guard let key = try await load(owner, on: connection, cache: false, logger: logger) else {
            throw Problem(.serviceUnavailable, "a data key could not be stored")
        }
        return key
    }

    /// The owner's key if it exists (nil: never made, or destroyed); on `connection` inside a
    /// transaction, else on a connection of the pool.
    func existingKey(for owner: String, on connection: PostgresConnection? = nil, logger: Logger) async throws -> SymmetricKey? {
        if let key = cached(owner) { return key }
        return try await load(owner, on: connection, cache: true, logger: logger)
    }

    private func cached(_ owner: String) -> SymmetricKey? {
        cache.withLock { cache in
            guard let entry = cache[owner] else { return nil }
            guard ContinuousClock.now - entry.loaded < Self.cacheLifetime else {
                cache[owner] = nil
                return nil
            }
            return entry.key
        }
    }

    /// Crypto-shredding: deletes the owner's key inside the caller's transaction; once that
    /// committed, `forget` drops it here (other processes' caches expire within `cacheLifetime`).
    func destroy(_ owner: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("DELETE FROM data_keys WHERE owner = \(owner)", logger: logger)
    }

    func forget(_ owner: String) {
        cache.withLock { _ = $0.removeValue(forKey: owner) }
    }

    private func load(_ owner: String, on connection: PostgresConnection?, cache shouldCache: Bool, logger: Logger) async throws -> SymmetricKey? {
        let query: PostgresQuery = "SELECT kek_id, wrapped FROM data_keys WHERE owner = \(owner)"
        let rows: PostgresRowSequence
        if let connection {
            rows = try await connection.query(query, logger: logger)
        } else {
            rows = try await postgres.query(query, logger: logger)
        }
        for try await (kekID, wrapped) in rows.decode((String, ByteBuffer).self) {
            guard let kek = keys.keys[kekID] else {
                logger.error("a data key is wrapped by a KEK that RECORDS_KEKS lacks", metadata: ["kek_id": "\(kekID)"])
                throw Problem(.serviceUnavailable, "a key-encryption key is missing from the configuration")
            }
            let key = try Self.unwrap(Array(wrapped.readableBytesView), owner: owner, kekID: kekID, kek: kek)
            guard shouldCache else { return key }
            cache.withLock { cache in
                if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
                cache[owner] = (key, ContinuousClock.now)
            }
            return key
        }
        return nil
    }

    static func wrap(_ key: SymmetricKey, owner: String, kekID: String, kek: SymmetricKey) throws -> [UInt8] {
        let bytes = key.withUnsafeBytes { Array($0) }
        return Array(try AES.GCM.seal(bytes, using: kek, authenticating: Array("\(kekID)|\(owner)".utf8)).combined!)
    }

    static func unwrap(_ wrapped: [UInt8], owner: String, kekID: String, kek: SymmetricKey) throws -> SymmetricKey {
        let box = try AES.GCM.SealedBox(combined: wrapped)
        return SymmetricKey(data: try AES.GCM.open(box, using: kek, authenticating: Array("\(kekID)|\(owner)".utf8)))
    }

    /// Rewraps every data key not yet under the active KEK (`medledger-records rotate-kek`).
    static func rewrapAll(postgres: PostgresClient, keys: KeyEncryptionKeys, logger: Logger) async throws -> Int {
        var count = 0
        while true {
            let batch = try await Database.transaction(postgres, logger: logger) { connection -> Int in
                let rows = try await connection.query(
                    "SELECT owner, kek_id, wrapped FROM data_keys WHERE kek_id <> \(keys.activeID) LIMIT 500 FOR UPDATE SKIP LOCKED",
                    logger: logger
                )
                var found: [(String, String, [UInt8])] = []
                for try await (owner, kekID, wrapped) in rows.decode((String, String, ByteBuffer).self) {
                    found.append((owner, kekID, Array(wrapped.readableBytesView)))
                }
                for (owner, kekID, wrapped) in found {
                    guard let kek = keys.keys[kekID] else {
                        throw ConfigError("a data key is wrapped by KEK \(kekID), which RECORDS_KEKS lacks: add it back to rotate")
                    }
                    let key = try unwrap(wrapped, owner: owner, kekID: kekID, kek: kek)
                    let rewrapped = try wrap(key, owner: owner, kekID: keys.activeID, kek: keys.active)
                    try await connection.query(
                        "UPDATE data_keys SET kek_id = \(keys.activeID), wrapped = \(ByteBuffer(bytes: rewrapped)) WHERE owner = \(owner)", logger: logger)
                }
                return found.count
            }
            count += batch
            if batch == 0 { return count }
        }
    }
}
