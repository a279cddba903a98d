public import Hummingbird
import Logging

/// Takes the caller's `X-Request-ID` (when it is a sane token) or Hummingbird's own id, puts it
/// in every log line of the request and echoes it on the response, so one id follows a request
/// across services.
public struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = request.headers[.requestID].flatMap { Self.isValid($0) ? $0 : nil } ?? context.id
        context.logger[metadataKey: "request_id"] = .string(id)
        var response = try await next(request, context)
        response.headers[.requestID] = id
        return response
    }

    static func isValid(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"):
                true
            default: false
            }
        }
    }
}

extension RequestContext {
    var requestIDText: String? {
        if case .string(let id)? = logger[metadataKey: "request_id"] { return id }
        return logger[metadataKey: "hb.request.id"].map { "\($0)" }
    }
}
