public import AsyncHTTPClient
public import Foundation
public import Logging
public import NIOCore
import NIOHTTP1

/// JSON calls from one MedLedger service to another with its own access token. A 401 means the
/// cached token went stale (e.g. identity's key rotated): fetch a fresh one and try once more.
public struct ServiceClient: Sendable {
    public let tokens: ServiceTokenClient
    public let httpClient: HTTPClient

    public init(tokens: ServiceTokenClient, httpClient: HTTPClient = .shared) {
        self.tokens = tokens
        self.httpClient = httpClient
    }

    public struct CallError: Error, CustomStringConvertible {
        public var status: Int
        public var description: String
    }

    /// The body of a public GET (no token: e.g. the ledger's checkpoint and tiles); non-2xx throws.
    public func get(_ url: URL, timeout: TimeAmount, limit: Int = 16 << 20) async throws -> ByteBuffer {
        let response = try await httpClient.execute(HTTPClientRequest(url: url.absoluteString), timeout: timeout)
        let body = try await response.body.collect(upTo: limit)
        guard (200..<300).contains(response.status.code) else {
            throw CallError(status: Int(response.status.code), description: "\(url.path) answered \(response.status.code): \(String(buffer: body).prefix(300))")
        }
        return body
    }

    /// POSTs `body` and returns the parsed JSON answer of a 2xx response; anything else throws.
    public func post(_ url: URL, json body: JSONValue, timeout: TimeAmount, logger: Logger) async throws -> JSONValue {
        try await send(.POST, url, body: body.serialized(), timeout: timeout)
    }

    /// GETs `url` with the service's token and returns the parsed JSON answer of a 2xx response.
    public func getJSON(_ url: URL, timeout: TimeAmount, logger: Logger) async throws -> JSONValue {
        try await send(.GET, url, body: nil, timeout: timeout)
    }

    private func send(_ method: HTTPMethod, _ url: URL, body: [UInt8]?, timeout: TimeAmount) async throws -> JSONValue {
        for attempt in 0..<2 {
            var request = HTTPClientRequest(url: url.absoluteString)
            request.method = method
            request.headers.add(name: "Authorization", value: "Bearer \(try await tokens.token())")
            request.headers.add(name: "Accept", value: "application/json")
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            let response = try await httpClient.execute(request, timeout: timeout)
            let answer = try await response.body.collect(upTo: 64 << 20)
            if response.status.code == 401, attempt == 0 {
                await tokens.invalidate()
                continue
            }
            guard (200..<300).contains(response.status.code) else {
                throw CallError(status: Int(response.status.code), description: "\(url.path) answered \(response.status.code): \(String(buffer: answer).prefix(300))")
            }
            return try JSONParser.parse(answer.readableBytesView)
        }
        throw CallError(status: 401, description: "\(url.path) refused a freshly issued service token")
    }
}
