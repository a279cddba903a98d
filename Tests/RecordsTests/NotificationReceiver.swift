import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// A real HTTP receiver on 127.0.0.1 for subscription notifications: it keeps every POST (headers
/// and exact body) and answers with the status it is told to.
final class NotificationReceiver: Sendable {
    struct Received: Sendable {
        var headers: HTTPFields
        var body: [UInt8]
        func header(_ name: String) -> String? { headers[HTTPField.Name(name)!] }
    }

    private let state = Mutex<(received: [Received], answer: HTTPResponse.Status)>(([], .ok))

    var received: [Received] { state.withLock { $0.received } }
    func answer(_ status: HTTPResponse.Status) { state.withLock { $0.answer = status } }

    /// Runs the receiver while `body` runs, passing it the receiver's URL.
    func serving<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("hook") { request, _ -> Response in
            let bytes = Array(try await request.body.collect(upTo: 1 << 20).readableBytesView)
            return Response(status: self.state.withLock { state in
                if state.answer == .ok { state.received.append(Received(headers: request.headers, body: bytes)) }
                return state.answer
            })
        }
        let (ports, port) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.yield(channel.localAddress?.port ?? 0) })
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            defer { group.cancelAll() }
            var iterator = ports.makeAsyncIterator()
            let listening = await iterator.next() ?? 0
            return try await body("http://127.0.0.1:\(listening)/hook")
        }
    }

    /// Polls until `count` notifications arrived or 20 s passed (no timing is asserted).
    func waitFor(_ count: Int) async throws -> [Received] {
        for _ in 0..<200 where received.count < count { try await Task.sleep(for: .milliseconds(100)) }
        return received
    }
}
