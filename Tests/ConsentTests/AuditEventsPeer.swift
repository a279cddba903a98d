import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MedLedgerCore
import NIOCore

/// The far end of audit delivery in tests: a small server with the audit service's `POST /events`
/// contract (events stored once per idempotency key, the answer naming every key with its id)
/// and identity's client_credentials token endpoint, which records what it received and fails
/// on demand. A test peer, not a mock database: the outbox under test is real PostgreSQL.
actor AuditEventsPeer {
    static let token = "peer-service-token"

    /// The keys of every `POST /events` that reached it, in order, refused ones included.
    private(set) var requests: [[String]] = []
    /// Each stored event by key, with the id it got: a retried key keeps its first id.
    private(set) var stored: [String: (id: Int, event: JSONValue)] = [:]
    private(set) var order: [String] = []
    /// Answers for the next requests instead of storing (e.g. 503, 400).
    private var failures: [HTTPResponse.Status] = []
    /// How long each `POST /events` takes, so that concurrent deliveries overlap.
    private var delay: Duration = .zero
    /// Leave this key out of answers (a broken audit service).
    private var unanswered: String?

    func fail(_ statuses: HTTPResponse.Status...) { failures += statuses }
    func slow(_ delay: Duration) { self.delay = delay }
    func leaveUnanswered(_ key: String?) { unanswered = key }

    /// Stored events in the order they were first received.
    var events: [JSONValue] { order.compactMap { stored[$0]?.event } }

    func receive(_ body: JSONValue, authorization: String?) async -> (HTTPResponse.Status, JSONValue) {
        guard authorization == "Bearer \(Self.token)" else { return (.unauthorized, .object([("detail", .string("no service token"))])) }
        let items = body["events"]?.arrayValue ?? []
        let keys = items.compactMap { $0["idempotencyKey"]?.stringValue }
        requests.append(keys)
        if delay != .zero { try? await Task.sleep(for: delay) }
        if !failures.isEmpty {
            let status = failures.removeFirst()
            return (status, .object([("title", .string(status.reasonPhrase)), ("status", .number(String(status.code)))]))
        }
        var answered: [JSONValue] = []
        for item in items {
            guard let key = item["idempotencyKey"]?.stringValue, let event = item["event"] else { return (.badRequest, .object([])) }
            if stored[key] == nil {
                stored[key] = (stored.count + 1, event)
                order.append(key)
            }
            if key != unanswered {
                answered.append(.object([("idempotencyKey", .string(key)), ("id", .string(String(stored[key]!.id)))]))
            }
        }
        return (.ok, .object([("events", .array(answered))]))
    }

    /// Serve it on a free port of 127.0.0.1 while `body` runs; `body` gets its base URL.
    nonisolated func serve<T: Sendable>(_ body: @Sendable (URL) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/auth/token") { _, _ in
            Self.json(.ok, .object([("access_token", .string(Self.token)), ("token_type", .string("Bearer")), ("expires_in", .number("900"))]))
        }
        router.post("/events") { request, _ in
            let bytes = try await request.body.collect(upTo: 64 << 20)
            let (status, answer) = await self.receive(try JSONParser.parse(bytes.readableBytesView), authorization: request.headers[.authorization])
            return Self.json(status, answer)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in try await body(URL(string: "http://127.0.0.1:\(client.port!)")!) }
    }

    private static func json(_ status: HTTPResponse.Status, _ body: JSONValue) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body.serialized())))
    }
}
