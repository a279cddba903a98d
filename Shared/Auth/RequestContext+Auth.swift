public import Foundation
public import Hummingbird
import JWTKit
import Logging
public import NIOCore

/// The request context of every service: Hummingbird's core plus the verified token, if any.
public struct ServiceRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var token: AccessToken?
    /// The peer's address (nil in router tests), e.g. for login throttling.
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        token = nil
        remoteAddress = source.channel.remoteAddress
    }

    /// The peer's IP address as text, "unknown" when there is none.
    public var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }

    /// Plain JSON: no `\/` escapes, which are legal but trip up people reading base64 by hand.
    public var responseEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }
}

/// Requires a valid bearer token and, optionally, roles or scopes (any of those listed).
public struct BearerAuthMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext

    let verifier: TokenVerifier
    let anyScope: Set<String>
    let anyRole: Set<String>

    public init(verifier: TokenVerifier, anyScope: Set<String> = [], anyRole: Set<String> = []) {
        self.verifier = verifier
        self.anyScope = anyScope
        self.anyRole = anyRole
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { throw Problem.unauthorized("a bearer token is required") }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw Problem.unauthorized("use the Authorization: Bearer scheme")
        }
        let token = try await verifier.verify(String(parts[1]))
        if !anyScope.isEmpty && anyScope.isDisjoint(with: token.scopes) {
            throw Problem.forbidden("this requires the scope \(anyScope.sorted().joined(separator: " or "))")
        }
        if !anyRole.isEmpty && !anyRole.contains(token.role) {
            throw Problem.forbidden("this requires the role \(anyRole.sorted().joined(separator: " or "))")
        }
        var context = context
        context.token = token
        context.logger[metadataKey: "sub"] = .string(token.sub.value)
        return try await next(request, context)
    }
}
