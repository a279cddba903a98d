import HTTPTypes
import Hummingbird
import MedLedgerCore

/// An RFC 6749 §5.2 error from the token endpoint: `{"error", "error_description"}`.
struct TokenEndpointError: Error, Sendable {
    enum Code: String, Sendable {
        case invalidRequest = "invalid_request"
        case invalidClient = "invalid_client"
        case invalidGrant = "invalid_grant"
        case unauthorizedClient = "unauthorized_client"
        case unsupportedGrantType = "unsupported_grant_type"
        case invalidScope = "invalid_scope"
    }

    var code: Code
    var description: String
    var status: HTTPResponse.Status = .badRequest
    var headers: HTTPFields = [:]

    init(_ code: Code, _ description: String) {
        self.code = code
        // RFC 6749 §5.2 allows only printable ASCII without `"` and `\` (echoed input may have more).
        self.description = String(String.UnicodeScalarView(description.unicodeScalars.map { scalar in
            (0x20...0x7E).contains(scalar.value) && scalar != "\"" && scalar != "\\" ? scalar : "?"
        }))
        if code == .invalidClient {
            status = .unauthorized
            headers[.wwwAuthenticate] = #"Basic realm="medledger""#
        }
    }

    static func throttled(retryAfter: Int) -> TokenEndpointError {
        var error = TokenEndpointError(.invalidRequest, "too many failed logins from this address; retry later")
        error.status = .tooManyRequests
        error.headers[.retryAfter] = String(retryAfter)
        return error
    }

    var response: Response {
        let body = JSONValue.object([("error", .string(code.rawValue)), ("error_description", .string(description))]).serialized()
        var headers = headers
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
