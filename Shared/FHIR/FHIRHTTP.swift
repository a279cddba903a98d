package import Foundation
package import HTTPTypes
package import Hummingbird

/// The HTTP conventions of the FHIR REST API (http.html): formats, versioning headers, `Prefer`.
package enum FHIRHTTP {
    package static let contentType = "application/fhir+json; charset=utf-8"
    package static let jsonTypes: Set<String> = ["application/fhir+json", "application/json", "application/json+fhir"]
    package static let jsonFormats: Set<String> = ["json", "application/json", "application/fhir+json", "application/json+fhir"]

    /// 406 unless the client accepts JSON (`Accept` or `_format`).
    package static func requireJSON(_ request: Request) throws(Problem) {
        // `_format` overrides `Accept` (FHIR http.html).
        if let format = request.queryText("_format") {
            guard jsonFormats.contains(format.lowercased()) else {
                throw Problem(.notAcceptable, "_format=\(format) is not supported: this server speaks FHIR JSON only")
            }
            return
        }
        guard acceptsJSON(request) else { throw Problem(.notAcceptable, "this server answers with application/fhir+json only") }
    }

    package static func acceptsJSON(_ request: Request) -> Bool {
        acceptedTypes(request).contains { $0 == "*/*" || $0 == "application/*" || jsonTypes.contains($0) }
    }

    /// The media types of `Accept` (lower-cased, parameters dropped); `*/*` when absent.
    package static func acceptedTypes(_ request: Request) -> [String] {
        guard let accept = request.headers[values: .accept].joined(separator: ",").nonEmpty else { return ["*/*"] }
        return accept.split(separator: ",").compactMap { item in
            let type = item.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            return type.isEmpty ? nil : type
        }
    }

    /// 415 unless the body is FHIR JSON (or plain JSON).
    package static func requireJSONBody(_ request: Request) throws(Problem) {
        guard let header = request.headers[.contentType] else { return }
        let type = header.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard jsonTypes.contains(type) else { throw Problem(.unsupportedMediaType, "send resources as application/fhir+json") }
    }

    /// The version in `If-Match: W/"n"` (nil without the header, 400 when malformed).
    package static func ifMatch(_ request: Request) throws(Problem) -> Int? {
        guard let header = request.headers[.ifMatch] else { return nil }
        var text = Substring(header.trimmingCharacters(in: .whitespaces))
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        guard text.count >= 3, text.first == "\"", text.last == "\"", let version = Int(text.dropFirst().dropLast()), version > 0 else {
            throw Problem.badRequest("If-Match must name a version as W/\"n\", got \(header)")
        }
        return version
    }

    package enum Return: Sendable {
        case minimal, representation, outcome
    }

    package static func preferredReturn(_ request: Request) -> Return {
        switch preference("return", request) {
        case "minimal": .minimal
        case "OperationOutcome": .outcome
        default: .representation
        }
    }

    package static func strictHandling(_ request: Request) -> Bool {
        preference("handling", request) == "strict"
    }

    private static func preference(_ name: String, _ request: Request) -> String? {
        for header in request.headers[values: HTTPField.Name("Prefer")!] {
            for item in header.split(separator: ",") {
                let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, parts[0].lowercased() == name { return parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            }
        }
        return nil
    }

    /// `ETag`, `Last-Modified` and (for writes) `Location` of a stored version.
    package static func versionHeaders(version: Int, lastUpdated: Date, location: String?) -> HTTPFields {
        var headers: HTTPFields = [.contentType: contentType, .eTag: "W/\"\(version)\"", .lastModified: FHIRDate.httpDate(lastUpdated)]
        if let location { headers[.location] = location }
        return headers
    }

    /// The answer to a write, shaped by `Prefer: return=…`: `body` is the stored resource,
    /// `reference` its versioned reference.
    package static func writeResponse(body: [UInt8], reference: String, headers: HTTPFields, status: HTTPResponse.Status, request: Request) -> Response {
        switch preferredReturn(request) {
        case .minimal:
            var minimal = headers
            minimal[.contentType] = nil
            return Response(status: status, headers: minimal)
        case .outcome:
            let body = FHIRIssue(code: "informational", diagnostics: "stored \(reference)").outcome(severity: "information").serialized()
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
        case .representation:
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    /// A search's parameters: the query string, plus the form body of a `POST _search`.
    package static func searchFields(_ request: Request, form: String?) throws(Problem) -> [(name: String, value: String)] {
        do {
            var fields = try FormBody(parsing: Substring(request.uri.query ?? "")).fields
            if let form { fields += try FormBody(parsing: Substring(form)).fields }
            return fields
        } catch {
            throw Problem.badRequest("the search parameters are not a valid query: \(error.description)")
        }
    }

    /// The form body of a `POST _search` (415 unless form-encoded).
    package static func searchForm(_ request: Request, limit: Int) async throws -> String {
        guard request.hasFormBody else { throw Problem(.unsupportedMediaType, "POST _search takes application/x-www-form-urlencoded") }
        return String(buffer: try await request.body.collect(upTo: limit))
    }

    /// The body as a JSON object of resource type `type` (400 malformed, 413 over `limit`, 422
    /// another type).
    package static func resourceBody(_ request: Request, type: String, limit: Int) async throws -> JSONValue {
        let resource = try await request.jsonBody(limit: limit)
        guard resource.isObject else { throw Problem.badRequest("the body must be a JSON object (a FHIR resource)") }
        guard resource["resourceType"]?.stringValue == type else {
            throw Problem.invalidResource([FHIRIssue(code: "invalid", diagnostics: "resourceType must be \(type) at this URL", expression: "\(type).resourceType")])
        }
        return resource
    }

    package static func jsonResponse(_ bytes: [UInt8]) -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

extension String {
    package var nonEmpty: String? { isEmpty ? nil : self }
}
