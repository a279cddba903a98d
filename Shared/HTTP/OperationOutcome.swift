public import Hummingbird

/// The FHIR form of a `Problem`: an OperationOutcome with an issue code that matches the status
/// (FHIR R4 http.html and the issue-type value set).
extension Problem {
    var fhirIssueCode: String {
        switch status.code {
        case 400: "invalid"
        case 401: "login"
        case 403: "forbidden"
        case 404, 410: "not-found"
        case 405, 406, 415: "not-supported"
        case 409, 412: "conflict"
        case 413: "too-costly"
        case 422: "processing"
        case 429: "throttled"
        case 500..<600: "exception"
        default: "processing"
        }
    }

    public var operationOutcome: JSONValue {
        let issues = fhirIssues.isEmpty ? [FHIRIssue(code: fhirIssueCode, diagnostics: detail ?? title)] : fhirIssues
        return .object([
            ("resourceType", .string("OperationOutcome")),
            ("issue", .array(issues.map { $0.json(severity: status.code >= 500 ? "fatal" : "error") })),
        ])
    }

    func operationOutcomeResponse() -> Response {
        var headers = headers
        headers[.contentType] = "application/fhir+json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: operationOutcome.serialized())))
    }
}

/// One OperationOutcome issue: its code, the message, and the element it is about (FHIRPath).
public struct FHIRIssue: Sendable, Equatable {
    public var code: String
    public var diagnostics: String
    public var expression: String?

    public init(code: String, diagnostics: String, expression: String? = nil) {
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression
    }

    public func json(severity: String) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("severity", .string(severity)), ("code", .string(code)), ("diagnostics", .string(diagnostics)),
        ]
        if let expression { members.append(("expression", .array([.string(expression)]))) }
        return .object(members)
    }

    /// An OperationOutcome of this one issue (informational answers and warnings in Bundles).
    public func outcome(severity: String) -> JSONValue {
        .object([("resourceType", .string("OperationOutcome")), ("issue", .array([json(severity: severity)]))])
    }
}

extension Problem {
    /// 422 for a resource that breaks the rules, one issue per problem found.
    public static func invalidResource(_ issues: [FHIRIssue]) -> Problem {
        var problem = Problem(.unprocessableContent, issues.map(\.diagnostics).joined(separator: "; "))
        problem.fhirIssues = issues
        return problem
    }
}
