public import HTTPTypes
public import HummingbirdTesting
public import MedLedgerCore
import NIOCore

/// An answer: status, headers and the body parsed as JSON (nil if empty or not JSON).
public struct Answer: Sendable {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var text: String
    public var json: JSONValue? { try? JSONParser.parse(text) }
    public var id: String? { json?["id"]?.stringValue }
    public var total: Int? { json?["total"].flatMap { if case .number(let n) = $0 { Int(n) } else { nil } } }
    /// Ids of a Bundle's matches, in order.
    public var ids: [String] {
        (json?["entry"]?.arrayValue ?? []).filter { $0["search"]?["mode"]?.stringValue != "outcome" }.compactMap {
            $0["resource"]?["id"]?.stringValue
        }
    }
    public func link(_ relation: String) -> String? {
        json?["link"]?.arrayValue?.first { $0["relation"]?.stringValue == relation }?["url"]?.stringValue
    }
    /// The OperationOutcome's first issue: diagnostics and expression.
    public var issue: (diagnostics: String, expression: String?)? {
        guard let issue = json?["issue"]?.arrayValue?.first else { return nil }
        return (issue["diagnostics"]?.stringValue ?? "", issue["expression"]?.arrayValue?.first?.stringValue)
    }
    public var contentType: String? { headers[.contentType] }
}

extension TestClientProtocol {
    public func send(_ method: HTTPRequest.Method, _ uri: String, token: String?, body: String? = nil, headers extra: HTTPFields = [:]) async throws
        -> Answer
    {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil, headers[.contentType] == nil { headers[.contentType] = uri.hasPrefix("/fhir") ? "application/fhir+json" : "application/json" }
        let response = try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        return Answer(status: response.status, headers: response.headers, text: String(buffer: response.body))
    }
}
