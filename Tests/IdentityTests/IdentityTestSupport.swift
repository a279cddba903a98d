import Configuration
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Identity
import MedLedgerCore
import NIOCore
import TestSupport
import Testing

/// An identity service under test: its own database and key-encryption key, the minimum bcrypt
/// cost (as the design guide's pitfalls advise), a bootstrap admin and one service client.
struct IdentityFixture {
    static let adminPassword = "Adm1n-Test-Secret-42"
    static let clientSecret = "svc-secret-0123456789abcdefghijklmnopqrstuvwx"
    static let issuer = "http://127.0.0.1:8081"

    let databaseURL: String
    let kek: String

    static func make(_ name: String = "identity") async throws -> IdentityFixture {
        IdentityFixture(databaseURL: try await TestDatabase.create(prefix: name), kek: Array((0..<32).map { _ in UInt8.random(in: 0...255) }).base64String)
    }

    var variables: [String: String] {
        [
            "DATABASE_URL": databaseURL,
            "IDENTITY_KEK": kek,
            "MEDLEDGER_ENV": "development",
            "MEDLEDGER_ADMIN_USER": "admin",
            "MEDLEDGER_ADMIN_PASSWORD": Self.adminPassword,
            "BCRYPT_COST": "4",
            "SIGNING_KEY_REFRESH_MS": "100",
            "IDENTITY_CLIENTS": "ledger-writer:\(Self.clientSecret):service:medledger/ledger.append medledger/audit.write",
        ]
    }

    func app(_ extra: [String: String] = [:]) async throws -> some ApplicationProtocol {
        try await buildApplication(reader: testConfig(variables.merging(extra) { $1 }))
    }
}

/// What a test needs from a token response.
struct Tokens {
    var access: String
    var refresh: String?
    var scope: String
}

extension TestClientProtocol {
    func request(_ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: String? = nil, headers: HTTPFields = [:]) async throws
        -> TestResponse
    {
        var headers = headers
        if let token { headers[.authorization] = "Bearer \(token)" }
        if json != nil && headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
    }

    func form(_ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = headers[.contentType] ?? "application/x-www-form-urlencoded"
        return try await execute(uri: "/auth/token", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    func login(_ username: String, _ password: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Tokens {
        let response = try await request(.post, "/auth/login", json: #"{"username":"\#(username)","password":"\#(password)"}"#)
        #expect(response.status == .ok, "login \(username): \(String(buffer: response.body))", sourceLocation: sourceLocation)
        return try parseTokens(response)
    }

    func adminToken() async throws -> String { try await login("admin", IdentityFixture.adminPassword).access }

    /// Creates an account as `creator` and returns its id.
    func createUser(
        _ username: String, role: String, password: String = "Correct-Horse-9!", fhirUser: String? = nil, by creator: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> String {
        let fhir = fhirUser.map { #","fhirUser":"\#($0)""# } ?? ""
        let response = try await request(
            .post, "/users", token: creator,
            json: #"{"username":"\#(username)","password":"\#(password)","role":"\#(role)","name":"\#(username.capitalized)"\#(fhir)}"#)
        #expect(response.status == .created, "create \(username): \(String(buffer: response.body))", sourceLocation: sourceLocation)
        return try JSONParser.parse(response.body.readableBytesView)["id"]?.stringValue ?? ""
    }

}

func parseTokens(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) throws -> Tokens {
    #expect(response.status == .ok, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
    let json = try JSONParser.parse(response.body.readableBytesView)
    return Tokens(access: json["access_token"]?.stringValue ?? "", refresh: json["refresh_token"]?.stringValue, scope: json["scope"]?.stringValue ?? "")
}

func json(_ response: TestResponse) throws -> JSONValue { try JSONParser.parse(response.body.readableBytesView) }

/// The payload of a JWT, unverified (tests inspect what identity put in).
func claims(_ token: String) throws -> JSONValue {
    let parts = token.split(separator: ".")
    guard parts.count == 3 else { throw Problem.badRequest("not a JWT: \(token.prefix(20))") }
    return try JSONParser.parse(Base64.decodeLenient(parts[1]) ?? [])
}

func header(_ token: String) throws -> JSONValue {
    try JSONParser.parse(Base64.decodeLenient(token.split(separator: ".")[0]) ?? [])
}

/// Asserts an RFC 6749 error answer from the token endpoint.
func expectOAuthError(
    _ response: TestResponse, _ status: HTTPResponse.Status, _ error: String, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    #expect(response.status == status, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
    #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
    let body = try json(response)
    #expect(body["error"]?.stringValue == error, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
    #expect(body["error_description"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
}

/// Asserts a problem+json answer.
func expectProblem(_ response: TestResponse, _ status: HTTPResponse.Status, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == status, "\(what): \(String(buffer: response.body))", sourceLocation: sourceLocation)
    #expect(response.headers[.contentType] == "application/problem+json", "\(what)", sourceLocation: sourceLocation)
}
