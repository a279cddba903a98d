import Foundation
import HTTPTypes
import HummingbirdWebSocket
import Logging
import MedLedgerCore
import PostgresNIO
import ServiceLifecycle

/// The R4 websocket channel: a client connects with its bearer token, sends `bind {id}` for its
/// websocket subscriptions and receives `ping {id}` on each of their notifications (then reads
/// what changed through the REST API). Delivery notifies PostgreSQL (`pg_notify` in the
/// delivered event's transaction); every records instance listens and pings the sockets bound
/// to it, so a client may connect to any instance.
actor SubscriptionSockets: Service {
    static let channel = "medledger_subscriptions"
    static let path = "/fhir/websocket"

    private let postgres: PostgresClient
    private let logger: Logger
    /// Subscription id → the connections bound to it.
    private var bound: [String: [UUID: WebSocketOutboundWriter]] = [:]

    init(postgres: PostgresClient, logger: Logger) {
        self.postgres = postgres
        self.logger = logger
    }

    func bind(_ id: String, connection: UUID, writer: WebSocketOutboundWriter) {
        bound[id, default: [:]][connection] = writer
    }

    func unbind(_ connection: UUID) {
        for id in Array(bound.keys) {
            bound[id]?[connection] = nil
            if bound[id]?.isEmpty == true { bound[id] = nil }
        }
    }

    private func ping(_ id: String) async {
        for writer in (bound[id] ?? [:]).values {
            try? await writer.write(.text("ping \(id)"))
        }
    }

    /// Listens for delivered websocket events until shutdown, reconnecting after a failure.
    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.postgres.withConnection { connection in
                        for try await notification in try await connection.listen(Self.channel) {
                            await self.ping(notification.payload)
                        }
                    }
                } catch where !Task.isCancelled {
                    self.logger.warning("websocket relay lost its PostgreSQL listener; listening again", metadata: ["error": "\(error)"])
                    try await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// The caller of an upgrade request when its bearer token is good and it may subscribe.
    static func subscriber(_ request: HTTPRequest, verifier: TokenVerifier) async -> Caller? {
        guard let header = request.headerFields[.authorization], header.lowercased().hasPrefix("bearer "),
            let token = try? await verifier.verify(String(header.dropFirst(7))), let caller = try? Caller(token: token, address: "-"),
            [.doctor, .patient, .system].contains(caller.role), caller.scopes.contains(where: { $0.grants(.read, on: .diagnosticReport) })
        else { return nil }
        return caller
    }

    /// The handler of one upgraded connection, for `caller`.
    nonisolated func session(for caller: Caller, subscriptions: SubscriptionStore) -> WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context> {
        { inbound, outbound, context in
            let connection = UUID()
            do {
                for try await message in inbound.messages(maxSize: 4096) {
                    guard case .text(let text) = message else { continue }
                    try await outbound.write(.text(await self.answer(text, caller: caller, connection: connection, outbound: outbound, subscriptions: subscriptions)))
                }
            } catch {
                context.logger.debug("websocket closed", metadata: ["error": "\(error)"])
            }
            await self.unbind(connection)
        }
    }

    private func answer(_ text: String, caller: Caller, connection: UUID, outbound: WebSocketOutboundWriter, subscriptions: SubscriptionStore) async -> String {
        let words = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")
        guard words.count == 2, words[0] == "bind" else { return "error unknown command (send: bind {subscription id})" }
        let id = String(words[1])
        do {
            let stored = try await postgres.withConnection { connection in
                try await subscriptions.owned(id, by: caller, on: connection, logger: logger)
            }
            guard let stored, !stored.deleted else { return "error \(id) Subscription/\(id) is not known" }
            guard stored.channel == .websocket else { return "error \(id) Subscription/\(id) is not a websocket subscription" }
            bind(id, connection: connection, writer: outbound)
            return "bound \(id)"
        } catch {
            return "error \(id) the subscription could not be read now"
        }
    }
}
