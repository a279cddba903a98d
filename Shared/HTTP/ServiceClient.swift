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

    /// POSTs `body` and returns the parsed JSON answer of a 2xx response; anything else throws.
    public func post(_ url: URL, json body: JSONValue, timeout: TimeAmount, logger: Logger) async throws -> JSONValue {
        let bytes = body.serialized()
        let (status, answer) = try await send(url, timeout: timeout, limit: 64 << 20) { request in
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: bytes))
        }
        guard (200..<300).contains(status) else {
            throw CallError(status: status, description: "\(url.path) answered \(status): \(String(buffer: answer).prefix(300))")
        }
        return try JSONParser.parse(answer.readableBytesView)
    }

    /// GETs `url` with the service token and returns the answer whatever its status: to the
    /// caller a 404 may be an answer (it does not exist), not a failure.
    public func authorizedGet(_ url: URL, timeout: TimeAmount, limit: Int = 1 << 20) async throws -> (status: Int, body: ByteBuffer) {
        try await send(url, timeout: timeout, limit: limit) { $0.headers.add(name: "Accept", value: "application/json, application/fhir+json") }
    }

    /// Sends the request `prepare` shapes with the service token; once more with a fresh token
    /// after a 401.
    private func send(_ url: URL, timeout: TimeAmount, limit: Int, _ prepare: (inout HTTPClientRequest) -> Void) async throws -> (status: Int, body: ByteBuffer) {
        for attempt in 0..<2 {
            var request = HTTPClientRequest(url: url.absoluteString)
            request.headers.add(name: "Authorization", value: "Bearer \(try await tokens.token())")
            prepare(&request)
            let response = try await httpClient.execute(request, timeout: timeout)
            let answer = try await response.body.collect(upTo: limit)
            if response.status.code == 401, attempt == 0 {
                await tokens.invalidate()
                continue
            }
            return (Int(response.status.code), answer)
        }
        throw CallError(status: 401, description: "\(url.path) refused a freshly issued service token")
    }
}
