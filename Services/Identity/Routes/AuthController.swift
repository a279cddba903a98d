import JWTKit
import HTTPTypes
import Foundation
import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// `/auth/login` (JSON), `/auth/token` (OAuth 2.0, RFC 6749) and `/auth/logout`.
struct AuthController {
    /// Transactions that write audit events: delivery starts once they commit.
    let outboxes: OutboxTransactions
    let login: LoginService
    let issuer: TokenIssuer
    let sessions: SessionStore
    let clients: ClientStore
    let verifier: TokenVerifier
    /// Credentials are small; a larger body is not a login.
    static let bodyLimit = 64 * 1024

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.post("/auth/login") { request, context in try await passwordLogin(request, context: context) }
        routes.post("/auth/token") { request, context in
            do {
                return try await token(request, context: context)
            } catch let error as TokenEndpointError {
                return error.response
            }
        }
        routes.group("/auth/logout").add(middleware: BearerAuthMiddleware(verifier: verifier)).post { _, context in
            try await logout(context: context)
        }
        return routes
    }

    func passwordLogin(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let body = try JSONObjectReader(try await request.jsonBody(limit: Self.bodyLimit), allowed: ["username", "password"])
        let username = try body.string("username", maxLength: 256)
        let password = try body.string("password", maxLength: 1024)
        do {
            let success = try await login.login(username: username, password: password, address: context.clientAddress, logger: context.logger)
            let issued = try await issuer.issue(
                user: success.user, session: success.session, scopes: success.user.allowedScopes, refreshToken: success.refreshToken)
            return Self.noStore(Response.json(issuer.responseJSON(issued).serialized()))
        } catch let failure as LoginService.Failure {
            switch failure {
            case .invalidCredentials:
                throw Problem(.unauthorized, "invalid username or password", headers: [.wwwAuthenticate: #"Bearer realm="medledger""#])
            case .throttled(let seconds):
                throw Problem(.tooManyRequests, "too many failed logins from this address; retry later", headers: [.retryAfter: String(seconds)])
            }
        }
    }

    func token(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard request.hasFormBody else {
            throw TokenEndpointError(.invalidRequest, "send the parameters as application/x-www-form-urlencoded")
        }
        let form: FormBody
        do {
            let buffer = try await request.body.collect(upTo: Self.bodyLimit)
            form = try FormBody(parsing: Substring(String(decoding: buffer.readableBytesView, as: UTF8.self)))
        } catch let error as FormBody.Malformed {
            throw TokenEndpointError(.invalidRequest, "malformed form: \(error.description)")
        } catch {
            throw TokenEndpointError(.invalidRequest, "the request body is larger than \(Self.bodyLimit) bytes")
        }
        let parameters = try TokenParameters(form)
        let client = try await authenticateClient(request, parameters, context: context)
        switch parameters["grant_type"] {
        case nil:
            throw TokenEndpointError(.invalidRequest, "grant_type is required")
        case "password":
            return try await passwordGrant(parameters, context: context)
        case "client_credentials":
            guard let client else { throw TokenEndpointError(.invalidClient, "client_credentials needs client authentication") }
            guard !client.disabled else { throw TokenEndpointError(.unauthorizedClient, "this client is disabled") }
            let scopes = try ScopeRequest.narrow(allowed: client.scopes, requested: parameters["scope"])
            return Self.tokenResponse(issuer.responseJSON(try await issuer.issue(client: client, scopes: scopes)))
        case "refresh_token":
            return try await refreshGrant(parameters, context: context)
        case let other?:
            throw TokenEndpointError(.unsupportedGrantType, "grant_type \(other.prefix(64)) is not supported; use password, client_credentials or refresh_token")
        }
    }

    func passwordGrant(_ parameters: TokenParameters, context: ServiceRequestContext) async throws -> Response {
        let username = try parameters.required("username")
        let password = try parameters.required("password")
        let success: LoginService.Success
        do {
            success = try await login.login(username: username, password: password, address: context.clientAddress, logger: context.logger)
        } catch let failure as LoginService.Failure {
            switch failure {
            case .invalidCredentials: throw TokenEndpointError(.invalidGrant, "invalid username or password")
            case .throttled(let seconds): throw TokenEndpointError.throttled(retryAfter: seconds)
            }
        }
        let scopes: [String]
        do {
            scopes = try ScopeRequest.narrow(allowed: success.user.allowedScopes, requested: parameters["scope"])
        } catch {
            // Nothing was handed out: close the session the login opened.
            try await outboxes.transaction(logger: context.logger) { connection in
                _ = try await SessionStore.end(session: success.session, reason: "invalid-scope", on: connection, logger: context.logger)
            }
            throw error
        }
        let issued = try await issuer.issue(user: success.user, session: success.session, scopes: scopes, refreshToken: success.refreshToken)
        return Self.tokenResponse(issuer.responseJSON(issued))
    }

    func refreshGrant(_ parameters: TokenParameters, context: ServiceRequestContext) async throws -> Response {
        let token = try parameters.required("refresh_token")
        switch try await sessions.rotate(token, address: context.clientAddress, logger: context.logger) {
        case .invalid:
            throw TokenEndpointError(.invalidGrant, "the refresh token is invalid, expired or its session has ended")
        case .reused:
            throw TokenEndpointError(.invalidGrant, "the refresh token was already used; its session has been ended")
        case .rotated(let user, let session, let refreshToken):
            // Scopes follow the account as it is now (e.g. full scopes once the password changed).
            let scopes = try ScopeRequest.narrow(allowed: user.allowedScopes, requested: parameters["scope"])
            return Self.tokenResponse(issuer.responseJSON(try await issuer.issue(user: user, session: session, scopes: scopes, refreshToken: refreshToken)))
        }
    }

    /// client_secret_basic or client_secret_post (not both); nil when the request names no client.
    func authenticateClient(_ request: Request, _ parameters: TokenParameters, context: ServiceRequestContext) async throws -> ClientRecord? {
        var credentials: (id: String, secret: String)?
        if let header = request.headers[.authorization] {
            guard let basic = BasicCredentials(header: header) else {
                throw TokenEndpointError(.invalidClient, "use HTTP Basic client authentication on the token endpoint")
            }
            credentials = (basic.id, basic.secret)
        }
        if let secret = parameters["client_secret"] {
            guard credentials == nil else { throw TokenEndpointError(.invalidRequest, "use one client authentication method, not two") }
            guard let id = parameters["client_id"] else { throw TokenEndpointError(.invalidRequest, "client_secret needs client_id") }
            credentials = (id, secret)
        }
        guard let credentials else { return nil }
        guard credentials.id.utf8.count <= 64, credentials.secret.utf8.count <= 256,
            let client = try await clients.authenticate(id: credentials.id, secret: credentials.secret, logger: context.logger)
        else {
            throw TokenEndpointError(.invalidClient, "client authentication failed")
        }
        return client
    }

    func logout(context: ServiceRequestContext) async throws -> Response {
        guard let token = context.token, let sid = token.sid.flatMap(UUID.init(uuidString:)) else { return Response(status: .noContent) }
        try await outboxes.transaction(logger: context.logger) { connection in
            guard let user = try await SessionStore.user(ofSession: sid, on: connection, logger: context.logger),
                user.id.uuidString.lowercased() == token.sub.value,
                try await SessionStore.end(session: sid, reason: "logout", on: connection, logger: context.logger)
            else { return }
            var event = IdentityAuditEvent(kind: .logout, agent: .user(user, address: context.clientAddress))
            event.sessionID = sid
            try await event.row.insert(on: connection, logger: context.logger)
        }
        return Response(status: .noContent)
    }

    static func noStore(_ response: Response) -> Response {
        var response = response
        response.headers[.cacheControl] = "no-store"
        response.headers[HTTPField.Name("Pragma")!] = "no-cache"  // RFC 6749 §5.1, for HTTP/1.0 caches
        return response
    }

    static func tokenResponse(_ body: JSONValue) -> Response { noStore(Response.json(body.serialized())) }
}

/// The token request's parameters: each at most once (RFC 6749 §3.2), none empty.
struct TokenParameters: Sendable {
    let values: [String: String]

    init(_ form: FormBody) throws(TokenEndpointError) {
        var values: [String: String] = [:]
        for (name, value) in form.fields {
            guard values[name] == nil else { throw TokenEndpointError(.invalidRequest, "parameter \(name.prefix(64)) is repeated") }
            guard value.utf8.count <= 4096 else { throw TokenEndpointError(.invalidRequest, "parameter \(name.prefix(64)) is too long") }
            if !value.isEmpty { values[name] = value }
        }
        self.values = values
    }

    subscript(name: String) -> String? { values[name] }

    func required(_ name: String) throws(TokenEndpointError) -> String {
        guard let value = values[name] else { throw TokenEndpointError(.invalidRequest, "\(name) is required") }
        return value
    }
}

/// `Authorization: Basic` with the id and secret form-encoded first (RFC 6749 §2.3.1).
struct BasicCredentials {
    var id: String
    var secret: String

    init?(header: String) {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic", let bytes = Base64.decode(parts[1].trimmingCharacters(in: .whitespaces)),
            let text = String(validating: bytes, as: UTF8.self), let colon = text.firstIndex(of: ":"),
            let id = try? FormBody.decode(text[..<colon]), let secret = try? FormBody.decode(text[text.index(after: colon)...])
        else { return nil }
        (self.id, self.secret) = (id, secret)
    }
}
