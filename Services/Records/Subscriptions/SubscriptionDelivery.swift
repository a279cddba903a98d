import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import MedLedgerCore
import NIOCore
import NIOHTTP1
import PostgresNIO

/// Delivers queued notifications: at least once, in order per subscription, each with an event
/// number fixed at its first attempt (receivers drop duplicates by it). A subscription is leased
/// while one process delivers it, so records instances share the work and never send one
/// subscription's events side by side. Failures back off per subscription; after
/// `maxFailures` in a row it goes to `error` and waits for its owner to set it `active` again.
struct SubscriptionDelivery: Sendable {
    let postgres: PostgresClient
    let keys: DataKeyStore
    let store: SubscriptionStore
    let access: DeliveryAccess
    let signer: NotificationSigner
    let settings: SubscriptionSettings
    let base: String
    let development: Bool
    /// Wakes the audit outbox once delivery events are committed.
    let wakeAudit: @Sendable () -> Void
    let logger: Logger

    /// No redirects: a notification goes to the endpoint its owner registered, nowhere else.
    /// A refused connection fails at once rather than being retried until the request's timeout.
    static let httpClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()
    /// A lease outlives any one subscription's turn (`turnLimit` plus one request's timeout),
    /// and no more: a records instance killed mid-turn holds its subscriptions this long.
    static let lease = Duration.seconds(20)
    /// How long one subscription takes new events in a turn: a round (all turns side by side)
    /// then lasts at most this plus one request's timeout, inside the outbox worker's limit.
    static let turnLimit = Duration.seconds(3)
    static let eventsPerTurn = 50
    /// Subscriptions delivered side by side in one round; more due ones get the next round.
    static let subscriptionsPerRound = 8
    /// Done events kept per subscription for `$status`.
    static let keptEvents = 100

    /// One round: every due subscription gets a turn. Returns how many events were settled.
    func deliverRound() async throws -> Int {
        let now = Micros.of(Date())
        let due = try await postgres.query(
            """
            SELECT s.id FROM subscriptions s
            WHERE NOT s.deleted AND s.status = 'active' AND s.retry_at <= \(now) AND s.lease_until < \(now)
                AND EXISTS (SELECT 1 FROM subscription_events e WHERE e.subscription = s.id AND e.state = 'pending')
            ORDER BY s.retry_at LIMIT \(Self.subscriptionsPerRound)
            """, logger: logger
        ).collect().map { try $0.decode(String.self) }
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for id in due { group.addTask { try await turn(id) } }
            return try await group.reduce(0, +)
        }
    }

    /// One subscription's turn: lease it, send its pending events in order until one fails or
    /// the turn is up, release it.
    private func turn(_ id: String) async throws -> Int {
        let now = Micros.of(Date())
        let leaseEnd = now + Int64(Self.lease.components.seconds) * 1_000_000
        guard
            let row = try await postgres.query(
                """
                UPDATE subscriptions SET lease_until = \(leaseEnd)
                WHERE id = \(id) AND lease_until < \(now) AND retry_at <= \(now) AND status = 'active' AND NOT deleted
                RETURNING \(unescaped: StoredSubscription.columns)
                """, logger: logger
            ).collect().first
        else { return 0 }
        var subscription = try StoredSubscription.decode(row)
        var settled = 0
        do {
            let spec: SubscriptionSpec
            do {
                spec = try SubscriptionSpec(try await store.resource(subscription, logger: logger), development: development, current: subscription.status)
            } catch let problem as Problem {
                // Valid when written, not under today's settings (say, http to loopback after a
                // move to production): stop and tell the owner rather than retry forever.
                try await postpone(subscription, failures: settings.maxFailures, reason: "the subscription is not deliverable: \(problem.detail ?? problem.title)")
                throw problem
            }
            let events = try await pendingEvents(id)
            let started = ContinuousClock.now
            for event in events where ContinuousClock.now - started < Self.turnLimit {
                guard try await settle(event, of: &subscription, spec: spec) else { break }
                settled += 1
            }
        } catch {
            logger.error("subscription delivery failed", metadata: ["subscription": "\(id)", "error": "\(error)"])
        }
        // In a task of its own: when the worker abandons a slow round (cancelling it), the lease
        // is still given back, so the subscription does not wait out the lease.
        let (postgres, logger) = (self.postgres, self.logger)
        try await Task {
            try await postgres.query("UPDATE subscriptions SET lease_until = 0 WHERE id = \(id)", logger: logger)
            try await prune(id)
        }.value
        return settled
    }

    struct PendingEvent: Sendable {
        var seq: Int64
        var reportID: String
        var version: Int
        var writtenAt: Int64
        var number: Int64?
    }

    private func pendingEvents(_ id: String) async throws -> [PendingEvent] {
        try await postgres.query(
            """
            SELECT seq, resource_id, version, written_at, event_number FROM subscription_events
            WHERE subscription = \(id) AND state = 'pending' ORDER BY seq LIMIT \(Self.eventsPerTurn)
            """, logger: logger
        ).collect().map { row in
            let c = try row.decode((Int64, String, Int, Int64, Int64?).self)
            return PendingEvent(seq: c.0, reportID: c.1, version: c.2, writtenAt: c.3, number: c.4)
        }
    }

    /// Sends one event, or skips it when its subscriber may not read it (now). False: it failed
    /// and stays pending, holding back the later ones.
    private func settle(_ event: PendingEvent, of subscription: inout StoredSubscription, spec: SubscriptionSpec) async throws -> Bool {
        let verdict: DeliveryAccess.Verdict
        do {
            verdict = try await postgres.withConnection { connection in
                try await access.check(subscription.owner, reportID: event.reportID, version: event.version, on: connection, logger: logger)
            }
        } catch let error as DeliveryAccess.ConsentUnavailable {
            // Not the receiver's fault: retry later without counting it against the subscription.
            try await postpone(subscription, failures: subscription.failures, reason: error.description)
            return false
        }
        guard case .readable(let stored, let breakGlass) = verdict else {
            if case .hidden(let reason) = verdict {
                try await postgres.query(
                    "UPDATE subscription_events SET state = 'skipped', error = \(reason), done_at = \(Micros.of(Date())) WHERE seq = \(event.seq)",
                    logger: logger)
            }
            return true
        }
        guard let number = try await eventNumber(event, subscription: subscription.id) else { return false }
        subscription.eventsSinceStart = max(subscription.eventsSinceStart, number)
        let outcome: String?
        switch spec.channel {
        case .restHook:
            outcome = try await post(event, number: number, stored: stored, subscription: subscription, spec: spec)
        case .websocket:
            outcome = nil
        }
        if let failure = outcome {
            try await postgres.query(
                "UPDATE subscription_events SET attempts = attempts + 1, error = \(failure) WHERE seq = \(event.seq)", logger: logger)
            try await postpone(subscription, failures: subscription.failures + 1, reason: failure)
            subscription.failures += 1
            return false
        }
        try await delivered(event, number: number, stored: stored, breakGlass: breakGlass, subscription: subscription, spec: spec)
        subscription.failures = 0
        return true
    }

    /// The event's number: given at its first attempt, the same at every retry. Nil when the
    /// event is gone (its subscription was deleted during this turn): nothing is numbered then.
    private func eventNumber(_ event: PendingEvent, subscription: String) async throws -> Int64? {
        if let number = event.number { return number }
        return try await postgres.query(
            """
            WITH e AS (SELECT seq FROM subscription_events WHERE seq = \(event.seq) AND state = 'pending' FOR UPDATE),
            n AS (UPDATE subscriptions SET events_since_start = events_since_start + 1 WHERE id = \(subscription) AND EXISTS (SELECT 1 FROM e)
                RETURNING events_since_start)
            UPDATE subscription_events SET event_number = (SELECT events_since_start FROM n) WHERE seq IN (SELECT seq FROM e) RETURNING event_number
            """, logger: logger
        ).collect().first?.decode(Int64.self)
    }

    /// POSTs the signed notification; nil when the receiver took it (2xx), else why not.
    private func post(_ event: PendingEvent, number: Int64, stored: StoredVersion, subscription: StoredSubscription, spec: SubscriptionSpec) async throws
        -> String?
    {
        guard let endpoint = spec.endpoint else { return "the subscription has no endpoint" }
        var resource: [UInt8]? = nil
        if spec.content == .fullResource {
            do {
                resource = try await keys.open(stored, logger: logger)
            } catch let problem as Problem where problem.status == .gone {
                return nil  // erased since: nothing left to send, and nothing to retry
            }
        }
        let body = NotificationBundle.body(
            subscription: subscription,
            event: .init(number: number, reportID: event.reportID, version: event.version, writtenAt: Micros.date(event.writtenAt)),
            content: spec.content, resource: resource, base: base, now: Date())
        var request = HTTPClientRequest(url: endpoint.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/fhir+json")
        request.headers.add(name: "X-MedLedger-Signature", value: try await signer.detachedSignature(body, logger: logger))
        request.headers.add(name: "X-MedLedger-Subscription", value: subscription.id)
        request.headers.add(name: "X-MedLedger-Event-Number", value: String(number))
        for header in spec.headers { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await Self.httpClient.execute(request, timeout: .milliseconds(Int64(settings.timeoutMilliseconds)))
            _ = try? await response.body.collect(upTo: 1 << 20)
            return (200..<300).contains(response.status.code) ? nil : "POST \(Self.describe(endpoint)) answered \(response.status.code)"
        } catch {
            return "POST \(Self.describe(endpoint)) failed: \(error)"
        }
    }

    /// Scheme, host and port only: the path or query may carry a receiver's secret.
    static func describe(_ url: URL) -> String {
        "\(url.scheme ?? "https")://\(url.host ?? "")\(url.port.map { ":\($0)" } ?? "")"
    }

    /// Marks the event delivered with its audit event, then (websocket) has every records
    /// instance ping the sockets bound to the subscription.
    private func delivered(
        _ event: PendingEvent, number: Int64, stored: StoredVersion, breakGlass: String?, subscription: StoredSubscription, spec: SubscriptionSpec
    ) async throws {
        var recipient = subscription.owner
        recipient.address = spec.endpoint.map { $0.host ?? "-" } ?? "websocket"
        var audit = RecordsAuditEvent(
            kind: .notify, caller: recipient, type: "DiagnosticReport", entity: stored.versionReference, patient: stored.patient)
        audit.result = "delivered event \(number) of Subscription/\(subscription.id) by \(spec.channel.rawValue)"
        audit.breakGlass = breakGlass
        let row = AuditLog.row(audit)
        // One statement, so atomic: the event settled, the failure count reset, the audit row.
        try await postgres.query(
            """
            WITH delivered AS (
                UPDATE subscription_events SET state = 'delivered', attempts = attempts + 1, error = NULL, done_at = \(Micros.of(Date()))
                WHERE seq = \(event.seq)),
            healthy AS (UPDATE subscriptions SET failures = 0, error = NULL WHERE id = \(subscription.id) AND (failures > 0 OR error IS NOT NULL))
            INSERT INTO audit_outbox (idempotency_key, event) VALUES (\(row.key), \(row.event))
            """, logger: logger)
        if spec.channel == .websocket {
            // Pings are R4's fire-and-forget hint to read what changed; every instance relays them.
            try await postgres.query("SELECT pg_notify(\(SubscriptionSockets.channel), \(subscription.id))", logger: logger)
        }
        wakeAudit()
    }

    /// A failed attempt: retry after the backoff; the `maxFailures`-th in a row sets `error`.
    private func postpone(_ subscription: StoredSubscription, failures: Int, reason: String) async throws {
        let delay = settings.backoff(failures: max(failures, 1))
        let retryAt = Micros.of(Date()) + Int64(delay.components.seconds) * 1_000_000 + Int64(delay.components.attoseconds / 1_000_000_000_000)
        let failed = failures >= settings.maxFailures
        if failed {
            logger.warning("subscription set to error after repeated failures", metadata: ["subscription": "\(subscription.id)", "failures": "\(failures)"])
        }
        try await postgres.query(
            """
            UPDATE subscriptions SET failures = \(failures), retry_at = \(retryAt), error = \(reason),
                status = CASE WHEN \(failed) AND status = 'active' THEN 'error' ELSE status END
            WHERE id = \(subscription.id)
            """, logger: logger)
    }

    /// Keeps the newest `keptEvents` settled events of a subscription (what `$status` shows).
    private func prune(_ id: String) async throws {
        try await postgres.query(
            """
            DELETE FROM subscription_events WHERE subscription = \(id) AND state <> 'pending' AND seq < (
                SELECT seq FROM subscription_events WHERE subscription = \(id) AND state <> 'pending' ORDER BY seq DESC OFFSET \(Self.keptEvents) LIMIT 1)
            """, logger: logger)
    }
}

/// Records' delivery settings (`SUBSCRIPTION_*`, see the README).
struct SubscriptionSettings: Sendable {
    var retryBaseMilliseconds: Int
    var retryMaxMilliseconds: Int
    var maxFailures: Int
    var timeoutMilliseconds: Int

    /// The wait after the `failures`-th failure in a row: the base doubled each time, capped.
    func backoff(failures: Int) -> Duration {
        let doubled = retryBaseMilliseconds << min(failures - 1, 30)
        return .milliseconds(min(doubled, retryMaxMilliseconds))
    }
}
