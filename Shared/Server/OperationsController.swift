public import Hummingbird
import Logging
import Prometheus
public import PostgresNIO

/// The endpoints every service serves without a token: liveness, readiness (database reachable,
/// migrations done), Prometheus metrics and the service's OpenAPI document.
public struct OperationsController<Context: RequestContext>: Sendable {
    let postgres: PostgresClient
    let readiness: Readiness
    let openAPIDocument: String

    public init(postgres: PostgresClient, readiness: Readiness, openAPIDocument: String) {
        self.postgres = postgres
        self.readiness = readiness
        self.openAPIDocument = openAPIDocument
    }

    public var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("/health/live") { _, _ in Response.json(Array(#"{"status":"live"}"#.utf8)) }
        routes.get("/health/ready") { _, context in try await ready(context: context) }
        routes.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: MetricsRegistry.shared.emitToBuffer()))
            )
        }
        routes.get("/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: openAPIDocument)))
        }
        return routes
    }

    func ready(context: Context) async throws -> Response {
        guard readiness.isReady else { throw Problem(.serviceUnavailable, "starting up: migrations or recovery not finished") }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await postgres.query("SELECT 1", logger: context.logger) }
                group.addTask {
                    try await Task.sleep(for: .seconds(2))
                    throw CancellationError()
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            throw Problem(.serviceUnavailable, "the database is not reachable")
        }
        return Response.json(Array(#"{"status":"ready"}"#.utf8))
    }
}
