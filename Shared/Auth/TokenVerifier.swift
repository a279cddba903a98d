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
    let jwksURL: URL
    let issuer: String
    let audience: String
    let httpClient: HTTPClient
    let logger: Logger
    let refreshInterval: Duration
    var keys: JWTKeyCollection?
    var knownKeyIDs: Set<String> = []
    var lastLoad: ContinuousClock.Instant?

    public init(jwksURL: URL, issuer: String, audience: String, httpClient: HTTPClient = .shared, logger: Logger, refreshInterval: Duration = .seconds(10)) {
        self.jwksURL = jwksURL
        self.issuer = issuer
        self.audience = audience
        self.httpClient = httpClient
        self.logger = logger
        self.refreshInterval = refreshInterval
    }

    public func verify(_ token: String) async throws(Problem) -> AccessToken {
        // Identity always names its key. Without this check jwt-kit would try its default key.
        guard let kid = Self.keyID(of: token), !kid.isEmpty else { throw Problem.unauthorized("the token names no key (kid)") }
        if keys != nil, !knownKeyIDs.contains(kid), canRefresh {
            keys = nil  // a key we have not seen: identity may have rotated; refetch once
        }
        let payload: AccessToken
        do {
            let keys = try await currentKeys()
            guard knownKeyIDs.contains(kid) else { throw Problem.unauthorized("the token is signed with an unknown key") }
            payload = try await keys.verify(token, as: AccessToken.self)
        } catch let problem as Problem {
            throw problem
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

    private func currentKeys() async throws(Problem) -> JWTKeyCollection {
        if let keys { return keys }
        guard canRefresh else { throw Problem(.serviceUnavailable, "token keys are unavailable; retry later") }
        lastLoad = .now
        do {
            let json = try await fetchJWKS()
            let collection = try await JWTKeyCollection().add(jwksJSON: json)
            keys = collection
            knownKeyIDs = Set((try JSONParser.parse(json)["keys"]?.arrayValue ?? []).compactMap { $0["kid"]?.stringValue })
            return collection
        } catch {
            logger.warning("could not load JWKS", metadata: ["url": "\(jwksURL)", "error": "\(error)"])
            throw Problem(.serviceUnavailable, "token keys are unavailable; retry later")
        }
    }

    private func fetchJWKS() async throws -> String {
        if jwksURL.isFileURL {
            return try String(contentsOf: jwksURL, encoding: .utf8)
        }
        let response = try await httpClient.execute(HTTPClientRequest(url: jwksURL.absoluteString), timeout: .seconds(5))
        guard response.status == .ok else { throw Problem(.serviceUnavailable, "JWKS answered \(response.status.code)") }
        let body = try await response.body.collect(upTo: 1 << 20)
        return String(buffer: body)
    }
}
