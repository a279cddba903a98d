import NIOCore
import Foundation
import HTTPTypes
import Logging
import MedLedgerCore
import PostgresNIO

/// One stored subscription: its owner as their token said, its delivery state, and the
/// resource (sealed: channel headers are the subscriber's secrets).
struct StoredSubscription: Sendable {
    var id: String
    var version: Int
    var lastUpdated: Int64
    var deleted: Bool
    var owner: Caller
    var status: String
    var error: String?
    var criteria: String
    var channel: SubscriptionSpec.Channel
    var endsAt: Int64?
    var sealedBody: [UInt8]
    var eventsSinceStart: Int64
    var failures: Int

    static let columns = """
        id, version, last_updated, deleted, owner_subject, owner_role, owner_fhir_user, owner_scope, owner_trusted, status, error, criteria, \
        channel_type, ends_at, body, events_since_start, failures
        """

    static func decode(_ row: PostgresRow) throws -> StoredSubscription {
        let c = try row.decode(
            (String, Int, Int64, Bool, String, String, String?, String, Bool, String, String?, String, String, Int64?, ByteBuffer, Int64, Int).self)
        guard let role = Role(rawValue: c.5), let channel = SubscriptionSpec.Channel(rawValue: c.12) else {
            throw Problem(.internalServerError, "subscription \(c.0) has an unknown owner role or channel")
        }
        // R4: `end` turns a subscription off; nothing matches it after that (see SubscriptionMatching).
        let ended = c.13.map { $0 <= Micros.of(Date()) } ?? false
        return StoredSubscription(
            id: c.0, version: c.1, lastUpdated: c.2, deleted: c.3, owner: Caller(role: role, fhirUser: c.6, subject: c.4, scope: c.7, trusted: c.8),
            status: ended && c.9 != "error" ? "off" : c.9, error: c.10, criteria: c.11, channel: channel, endsAt: c.13, sealedBody: Array(c.14.readableBytesView),
            eventsSinceStart: c.15, failures: c.16)
    }

    var reference: String { "Subscription/\(id)" }
    /// The key every subscription is sealed under: not a patient's, so erasing a patient keeps it.
    static let keyOwner = "subscriptions"
    var context: String { "Subscription/\(id)/_history/\(version)" }
}

/// Reads and writes of `subscriptions`; every read is the owner's own (others learn nothing).
struct SubscriptionStore: Sendable {
    let postgres: PostgresClient
    let keys: DataKeyStore

    /// Inserts version `version` (1: create) of a checked subscription, sealed.
    func write(
        _ spec: SubscriptionSpec, id: String, version: Int, owner: Caller, now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> StoredSubscription {
        let key = try await keys.key(for: StoredSubscription.keyOwner, on: connection, logger: logger)
        let stamped = ResourceStamp.stamp(
            ResourceStamp.setting("error", to: nil, in: ResourceStamp.setting("status", to: .string(spec.status), in: spec.resource)),
            type: "Subscription", id: id, version: version, lastUpdated: now)
        let context = "Subscription/\(id)/_history/\(version)"
        let sealed = ByteBuffer(bytes: try ResourceCipher.seal(stamped.serialized(), key: key, context: context))
        let lastUpdated = Micros.of(now)
        let endsAt = spec.end.map(Micros.of)
        let scope = owner.grantedScopes.sorted().joined(separator: " ")
        let rows = try await connection.query(
            """
            INSERT INTO subscriptions (id, version, last_updated, owner_subject, owner_role, owner_fhir_user, owner_scope, owner_trusted, status,
                criteria, channel_type, ends_at, body)
            VALUES (\(id), \(version), \(lastUpdated), \(owner.subject), \(owner.role.rawValue), \(owner.fhirUser), \(scope), \(owner.trusted),
                \(spec.status), \(spec.criteriaText), \(spec.channel.rawValue), \(endsAt), \(sealed))
            ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, last_updated = EXCLUDED.last_updated, status = EXCLUDED.status,
                error = CASE WHEN EXCLUDED.status = 'active' THEN NULL ELSE subscriptions.error END,
                failures = CASE WHEN EXCLUDED.status = 'active' THEN 0 ELSE subscriptions.failures END, retry_at = 0,
                criteria = EXCLUDED.criteria, channel_type = EXCLUDED.channel_type, ends_at = EXCLUDED.ends_at, body = EXCLUDED.body
            RETURNING \(unescaped: StoredSubscription.columns)
            """,
            logger: logger)
        return try StoredSubscription.decode(try await rows.collect().first!)
    }

    /// The owner's subscription (deleted ones too: they answer 410), locked for an update.
    func owned(_ id: String, by owner: Caller, lock: Bool = false, on connection: PostgresConnection, logger: Logger) async throws
        -> StoredSubscription?
    {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: StoredSubscription.columns) FROM subscriptions WHERE id = \(id) AND owner_subject = \(owner.subject)
            \(unescaped: lock ? "FOR UPDATE" : "")
            """, logger: logger)
        return try await rows.collect().first.map(StoredSubscription.decode)
    }

    /// The owner's live subscriptions, newest first, optionally of one status or channel type.
    func search(owner: Caller, status: String?, channel: String?, limit: Int, logger: Logger) async throws -> [StoredSubscription] {
        let rows = try await postgres.query(
            """
            SELECT \(unescaped: StoredSubscription.columns) FROM subscriptions
            WHERE owner_subject = \(owner.subject) AND NOT deleted AND (\(status)::text IS NULL OR status = \(status))
                AND (\(channel)::text IS NULL OR channel_type = \(channel))
            ORDER BY last_updated DESC, id LIMIT \(limit)
            """, logger: logger)
        var found: [StoredSubscription] = []
        for try await row in rows { found.append(try StoredSubscription.decode(row)) }
        return found
    }

    /// Deletion: no more matching or delivery; what was still pending is dropped with it.
    func delete(_ subscription: StoredSubscription, now: Date, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "UPDATE subscriptions SET deleted = true, status = 'off', last_updated = \(Micros.of(now)) WHERE id = \(subscription.id)", logger: logger)
        try await connection.query("DELETE FROM subscription_events WHERE subscription = \(subscription.id) AND state = 'pending'", logger: logger)
    }

    /// The resource as served: the stored one with the server's current status and error.
    func resource(_ subscription: StoredSubscription, logger: Logger) async throws -> JSONValue {
        guard let key = try await keys.existingKey(for: StoredSubscription.keyOwner, logger: logger) else {
            throw Problem(.internalServerError, "the subscriptions' data key is missing")
        }
        let body = try ResourceCipher.open(subscription.sealedBody, key: key, context: subscription.context)
        var resource = ResourceStamp.setting("status", to: .string(subscription.status), in: try JSONParser.parse(body))
        if let error = subscription.error { resource = ResourceStamp.setting("error", to: .string(error), in: resource) }
        return resource
    }
}
