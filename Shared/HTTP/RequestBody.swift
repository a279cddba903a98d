public import Hummingbird

extension Request {
    /// Collects the body up to `limit` bytes (413 beyond) and parses it as strict JSON (400 when
    /// malformed), after checking the content type is JSON (415 otherwise).
    public func jsonBody(limit: Int) async throws -> JSONValue {
        if let contentType = headers[.contentType], let mediaType = MediaType(from: contentType),
            !(mediaType.type == .application && (mediaType.subType == "json" || mediaType.subType.hasSuffix("+json")))
        {
            throw Problem(.unsupportedMediaType, "send the body as application/json")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Problem(.contentTooLarge, "the request body is larger than \(limit) bytes")
        }
        do {
            return try JSONParser.parse(buffer.readableBytesView)
        } catch {
            throw Problem.badRequest("malformed JSON: \(error)")
        }
    }
}

extension Response {
    /// A JSON response from already serialised bytes.
    public static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok, contentType: String = "application/json") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    public static func text(_ text: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
