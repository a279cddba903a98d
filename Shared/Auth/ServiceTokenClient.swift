public import AsyncHTTPClient
public import Foundation
public import Logging
import NIOCore
import NIOHTTP1

/// A MedLedger service's own access token, fetched from identity with client_credentials
/// (`OAUTH_CLIENT_ID`/`OAUTH_CLIENT_SECRET`) and reused until shortly before it expires. One
/// fetch is shared by every caller that needs a token meanwhile.
public actor ServiceTokenClient {
    public struct Credentials: Sendable {
        public var clientID: String
        public var clientSecret: String

        public init(clientID: String, clientSecret: String) {
            self.clientID = clientID
            self.clientSecret = clientSecret
        }
    }

    let tokenURL: URL
    let credentials: Credentials
    let httpClient: HTTPClient
    let logger: Logger
    /// Renew this long before expiry, so a token never expires in flight.
    let renewBefore: TimeInterval
    var cached: (token: String, expires: Date)?
    var fetching: Task<(token: String, expires: Date), any Error>?

    public init(identityURL: URL, credentials: Credentials, httpClient: HTTPClient = .shared, logger: Logger, renewBefore: TimeInterval = 60) {
        self.tokenURL = identityURL.appendingPathComponent("auth/token")
        self.credentials = credentials
        self.httpClient = httpClient
        self.logger = logger
        self.renewBefore = renewBefore
    }

    public func token() async throws -> String {
        if let cached, cached.expires.timeIntervalSinceNow > renewBefore { return cached.token }
        let task: Task<(token: String, expires: Date), any Error>
        if let fetching {
            task = fetching
        } else {
            task = Task { [tokenURL, credentials, httpClient] in try await Self.fetch(tokenURL, credentials, httpClient) }
            fetching = task
        }
        defer { if fetching == task { fetching = nil } }
        do {
            let fresh = try await task.value
            cached = fresh
            return fresh.token
        } catch {
            logger.warning("could not get a service token", metadata: ["url": "\(tokenURL)", "error": "\(error)"])
            throw error
        }
    }

    /// Forget the cached token (e.g. after a peer answered 401 with it).
    public func invalidate() { cached = nil }

    public struct FetchError: Error, CustomStringConvertible {
        public var description: String
    }

    static func fetch(_ url: URL, _ credentials: Credentials, _ httpClient: HTTPClient) async throws -> (token: String, expires: Date) {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
        let basic = "\(formEncode(credentials.clientID)):\(formEncode(credentials.clientSecret))"
        request.headers.add(name: "Authorization", value: "Basic " + Array(basic.utf8).base64String)
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: "grant_type=client_credentials"))
        let started = Date()
        let response = try await httpClient.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 16)
        guard response.status == .ok else {
            throw FetchError(description: "identity answered \(response.status.code) to client_credentials: \(String(buffer: body).prefix(200))")
        }
        let json = try JSONParser.parse(body.readableBytesView)
        guard let token = json["access_token"]?.stringValue, case .number(let seconds)? = json["expires_in"], let lifetime = Double(seconds) else {
            throw FetchError(description: "identity's token response lacks access_token or expires_in")
        }
        return (token, started.addingTimeInterval(lifetime))
    }

    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
