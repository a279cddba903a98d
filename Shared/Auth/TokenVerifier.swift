public import AsyncHTTPClient
public import Foundation
import JWTKit
public import Logging
import HTTPTypes
import NIOCore
import NIOHTTP1

/// Verifies bearer tokens locally against identity's JWKS. Keys are fetched lazily, cached, and
/// refetched when a token names an unknown `kid` (key rotation), at most once per
/// `refreshInterval` so that garbage tokens cannot make us hammer identity.
public actor TokenVerifier {
    /// Where the keys come from, for log lines.
    let source: String
    let loadJWKS: @Sendable () async throws -> String
    let issuer: String
    let audience: String
    let logger: Logger
    let refreshInterval: Duration
    var keys: LoadedKeys?
    /// The fetch under way, shared by every request that arrives meanwhile (a burst right after
    /// start must not see "keys unavailable" while the first fetch is still running).
    var loading: Task<LoadedKeys, any Error>?
    var lastLoad: ContinuousClock.Instant?
    /// Tokens already verified, until they expire: a service sends the same token with every
    /// request, and checking its Ed25519 signature each time was a quarter of a write's CPU.
    var verified: [String: AccessToken] = [:]
    let verifiedLimit = 10_000

    struct LoadedKeys: Sendable {
        var collection: JWTKeyCollection
        var keyIDs: Set<String>
    }

    public init(jwksURL: URL, issuer: String, audience: String, httpClient: HTTPClient = .shared, logger: Logger, refreshInterval: Duration = .seconds(2)) {
        self.init(source: jwksURL.absoluteString, issuer: issuer, audience: audience, logger: logger, refreshInterval: refreshInterval) {
            try await Self.fetch(jwksURL, httpClient: httpClient)
        }
    }

    /// Keys from somewhere other than a URL: identity verifies its own tokens from its key store.
    public init(
        source: String, issuer: String, audience: String, logger: Logger, refreshInterval: Duration = .seconds(2),
        loadJWKS: @escaping @Sendable () async throws -> String
    ) {
        self.source = source
        self.loadJWKS = loadJWKS
        self.issuer = issuer
        self.audience = audience
        self.logger = logger
        self.refreshInterval = refreshInterval
    }

    public func verify(_ token: String) async throws(Problem) -> AccessToken {
        if let known = verified[token] {
            guard known.exp.value > Date() else {
                verified[token] = nil
                throw Problem.unauthorized("the token has expired or is not valid yet")
            }
            return known
        }
        let payload = try await verifyUncached(token)
        // Only tokens already valid are kept (one with a future nbf is rejected above).
        if verified.count >= verifiedLimit { verified.removeAll(keepingCapacity: true) }
        verified[token] = payload
        return payload
    }

    func verifyUncached(_ token: String) async throws(Problem) -> AccessToken {
        // Identity always names its key. Without this check jwt-kit would try its default key.
        guard let kid = Self.keyID(of: token), !kid.isEmpty else { throw Problem.unauthorized("the token names no key (kid)") }
        if let keys, !keys.keyIDs.contains(kid) {
            // A key we have not seen: identity may have just rotated. Right after a fetch, wait
            // for the next one rather than refuse a genuine token (garbage kids share that fetch).
            if !canRefresh, let lastLoad { try? await Task.sleep(until: lastLoad + refreshInterval, clock: .continuous) }
            if let current = self.keys, !current.keyIDs.contains(kid), canRefresh {
                verified.removeAll()
                self.keys = nil
            }
        }
        let keys = try await currentKeys()
        guard keys.keyIDs.contains(kid) else { throw Problem.unauthorized("the token is signed with an unknown key") }
        let payload: AccessToken
        do {
            payload = try await keys.collection.verify(token, as: AccessToken.self)
        } catch {
            throw Self.rejection(error)
        }
        guard payload.iss.value == issuer else { throw Problem.unauthorized("the token was not issued by \(issuer)") }
        guard payload.aud.value.contains(audience) else { throw Problem.unauthorized("the token is not meant for audience \(audience)") }
        return payload
    }

    /// The `kid` of the token's (not yet verified) header, to decide whether to refetch keys.
    static func keyID(of token: String) -> String? {
        guard let header = token.split(separator: ".", maxSplits: 1).first, let bytes = Base64.decodeLenient(header),
            let value = try? JSONParser.parse(bytes)
        else { return nil }
        return value["kid"]?.stringValue
    }

    static func rejection(_ error: any Error) -> Problem {
        if let error = error as? JWTError, error.errorType == .claimVerificationFailure {
            return .unauthorized("the token has expired or is not valid yet")
        }
        return .unauthorized("the token is not valid")
    }

    var canRefresh: Bool {
        guard let lastLoad else { return true }
        return ContinuousClock.now - lastLoad >= refreshInterval
    }

    private func currentKeys() async throws(Problem) -> LoadedKeys {
        if let keys { return keys }
        let task: Task<LoadedKeys, any Error>
        if let loading {
            task = loading
        } else {
            guard canRefresh else { throw Problem(.serviceUnavailable, "token keys are unavailable; retry later") }
            lastLoad = .now
            task = Task { [loadJWKS] in try await Self.keys(fromJWKS: try await loadJWKS()) }
            loading = task
        }
        do {
            let loaded = try await task.value
            if loading == task {
                loading = nil
                keys = loaded
            }
            return loaded
        } catch {
            if loading == task {
                loading = nil
                logger.warning("could not load JWKS", metadata: ["source": "\(source)", "error": "\(error)"])
            }
            throw Problem(.serviceUnavailable, "token keys are unavailable; retry later")
        }
    }

    static func fetch(_ url: URL, httpClient: HTTPClient) async throws -> String {
        if url.isFileURL { return try String(contentsOf: url, encoding: .utf8) }
        let response = try await httpClient.execute(HTTPClientRequest(url: url.absoluteString), timeout: .seconds(5))
        guard response.status == .ok else { throw Problem(.serviceUnavailable, "JWKS answered \(response.status.code)") }
        return String(buffer: try await response.body.collect(upTo: 1 << 20))
    }

    static func keys(fromJWKS json: String) async throws -> LoadedKeys {
        let collection = try await JWTKeyCollection().add(jwksJSON: json)
        let ids = (try JSONParser.parse(json)["keys"]?.arrayValue ?? []).compactMap { $0["kid"]?.stringValue }
        return LoadedKeys(collection: collection, keyIDs: Set(ids))
    }
}
