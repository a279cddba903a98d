import AsyncHTTPClient
import Foundation
import Logging
import MedLedgerCore
import NIOCore

/// What records knows, for one request, of the grants patients gave an actor.
enum GrantLookup: Sendable, Equatable {
    case grants([ConsentGrant])
    /// Consent could not be asked and no earlier answer is still fresh: access by consent is
    /// refused (fail closed) until it answers again.
    case unavailable
}

/// Asks consent's `GET /grants?actor=` and keeps each actor's answer for the cache bound
/// (`CONSENT_CACHE_SECONDS`, shortened by consent's `maxAge`): a revocation reaches records
/// within that bound, and a doctor's searches cost one consent call per bound, not one each.
/// Concurrent requests of one actor share one call; after a failed call every actor fails fast
/// for a second, so a hung consent service does not hold every request for the timeout.
actor ConsentGrantCache {
    private let client: ServiceClient?
    private let consentURL: URL
    private let cacheSeconds: Int
    private let logger: Logger
    private var entries: [String: Entry] = [:]
    private var inFlight: [String: Task<Entry?, Never>] = [:]
    private var unreachableUntil = ContinuousClock.now
    static let timeout = TimeAmount.seconds(2)
    /// Actors remembered at most; beyond it, expired answers are dropped.
    static let capacity = 10_000

    private struct Entry: Sendable {
        var grants: [ConsentGrant]
        var expires: ContinuousClock.Instant
    }

    /// `client` nil (development without credentials): nothing is granted by consent.
    init(client: ServiceClient?, consentURL: URL, cacheSeconds: Int, logger: Logger) {
        self.client = client
        self.consentURL = consentURL
        self.cacheSeconds = cacheSeconds
        self.logger = logger
    }

    /// The actor's grants that are in force now (`actor`: `Practitioner/x` or `Organization/y`).
    func lookup(actor: String) async -> GrantLookup {
        // Without credentials consent cannot be asked at all: a configuration, not an outage.
        guard client != nil else { return .grants([]) }
        let entry: Entry?
        if let cached = entries[actor], cached.expires > .now {
            entry = cached
        } else if let running = inFlight[actor] {
            entry = await running.value
        } else if unreachableUntil > .now {
            entry = nil
        } else {
            let task = Task { await fetch(actor: actor) }
            inFlight[actor] = task
            entry = await task.value
            inFlight[actor] = nil
            if let entry { remember(entry, for: actor) } else { unreachableUntil = .now + .seconds(1) }
        }
        guard let entry else { return .unavailable }
        // An answer may be up to the bound old: a grant whose period ended since stops now.
        let now = Date()
        return .grants(entry.grants.filter { ($0.until ?? .distantFuture) > now })
    }

    private func remember(_ entry: Entry, for actor: String) {
        if entries.count >= Self.capacity {
            let now = ContinuousClock.now
            entries = entries.filter { $0.value.expires > now }
        }
        if entries.count < Self.capacity { entries[actor] = entry }
    }

    private nonisolated func fetch(actor: String) async -> Entry? {
        guard let client else { return nil }
        var components = URLComponents(url: consentURL.appendingPathComponent("grants"), resolvingAgainstBaseURL: false)!
        components.queryItems = [URLQueryItem(name: "actor", value: actor)]
        do {
            let (status, body) = try await client.authorizedGet(components.url!, timeout: Self.timeout)
            guard status == 200 else {
                logger.warning("consent refused the grant list; access by consent is refused until it answers", metadata: ["status": "\(status)"])
                return nil
            }
            guard let (grants, maxAge) = ConsentGrant.parseList(try JSONParser.parse(body.readableBytesView)) else {
                logger.error("consent's /grants answer does not have the contract's shape; refusing access by consent")
                return nil
            }
            return Entry(grants: grants, expires: .now + .seconds(min(maxAge, cacheSeconds)))
        } catch {
            logger.warning("consent unreachable; access by consent is refused until it answers", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
