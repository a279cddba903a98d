public import HTTPTypes
public import Hummingbird
import Foundation

/// An RFC 9457 problem: the error every non-FHIR endpoint answers with. Thrown from handlers;
/// `ErrorMiddleware` renders it (as problem+json, or as a FHIR OperationOutcome on FHIR routes).
public struct Problem: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var title: String
    public var detail: String?
    /// Extra response headers, e.g. `WWW-Authenticate` on 401.
    public var headers: HTTPFields
    /// Issues with the element each is about, for FHIR validation errors (shown in the
    /// OperationOutcome; problem+json shows the detail only).
    public var fhirIssues: [FHIRIssue] = []

    public init(_ status: HTTPResponse.Status, _ detail: String? = nil, title: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.title = title ?? status.reasonPhrase
        self.detail = detail
        self.headers = headers
    }

    public var description: String { "\(status.code) \(title)\(detail.map { ": \($0)" } ?? "")" }

    public static func badRequest(_ detail: String) -> Problem { Problem(.badRequest, detail) }
    public static func notFound(_ detail: String) -> Problem { Problem(.notFound, detail) }

    public static func unauthorized(_ detail: String) -> Problem {
        Problem(.unauthorized, detail, headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
    }

    public static func forbidden(_ detail: String) -> Problem {
        Problem(.forbidden, detail, headers: [.wwwAuthenticate: "Bearer error=\"insufficient_scope\""])
    }
}

extension HTTPField.Name {
    public static var requestID: Self { .init("X-Request-ID")! }
}

extension MediaType {
    public static let problemJSON = MediaType(type: .application, subType: "problem+json")
}

struct ProblemDocument: Encodable {
    var type = "about:blank"
    var title: String
    var status: Int
    var detail: String?
    var instance: String?
}

extension Problem {
    func problemJSONResponse(requestID: String?) -> Response {
        let document = ProblemDocument(title: title, status: Int(status.code), detail: detail, instance: requestID.map { "urn:request:\($0)" })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let body = (try? encoder.encode(document)) ?? Data()
        var headers = headers
        headers[.contentType] = MediaType.problemJSON.description
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
