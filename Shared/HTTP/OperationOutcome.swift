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
        .object([
            ("resourceType", .string("OperationOutcome")),
            (
                "issue",
                .array([
                    .object([
                        ("severity", .string(status.code >= 500 ? "fatal" : "error")),
                        ("code", .string(fhirIssueCode)),
                        ("diagnostics", .string(detail ?? title)),
                    ])
                ])
            ),
        ])
    }

    func operationOutcomeResponse() -> Response {
        var headers = headers
        headers[.contentType] = "application/fhir+json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: operationOutcome.serialized())))
    }
}
