public import Hummingbird
import Logging
import PostgresNIO

/// Turns every error into a well-formed answer: problem+json (RFC 9457) or, under a FHIR base
/// (unknown routes included), an OperationOutcome. Unexpected errors become a 500 with the
/// request id and no internals; they are logged (without request data) so operators can follow the id.
public struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The path under which errors are FHIR OperationOutcomes (`/fhir`), if the service has one.
    let fhirBase: String?

    public init(fhirBase: String? = nil) {
        self.fhirBase = fhirBase
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = Self.problem(for: error, context: context)
            let path = request.uri.path
            if let fhirBase, path == fhirBase || path.hasPrefix(fhirBase + "/") { return problem.operationOutcomeResponse() }
            return problem.problemJSONResponse(requestID: context.requestIDText)
        }
    }

    static func problem(for error: any Error, context: Context) -> Problem {
        switch error {
        case let problem as Problem:
            return problem
        case let error as HTTPError:
            // Hummingbird's own errors: unknown route (404), body over the limit (413), …
            return Problem(error.status, error.body, headers: error.headers)
        case let error as any HTTPResponseError where error.status.code < 500:
            return Problem(error.status)
        case let error as PSQLError where error.serverInfo?[.sqlState]?.hasPrefix("22") == true:
            // SQLSTATE class 22, "data exception": a value from the request that PostgreSQL cannot
            // hold (a NUL character in text, a number out of range) got past validation.
            context.logger.notice("request value refused by the database", metadata: ["sqlstate": "\(error.serverInfo?[.sqlState] ?? "")"])
            return Problem.badRequest("the request contains a value that cannot be stored (for example a NUL character)")
        case is PSQLError, is PostgresError:
            context.logger.error("database error", metadata: ["error": "\(String(reflecting: type(of: error)))"])
            return Problem(.serviceUnavailable, "the database is unavailable; retry later")
        default:
            context.logger.error("unexpected error", metadata: ["error": "\(error)"])
            return Problem(.internalServerError, "an unexpected error occurred; quote the request id to the operator")
        }
    }
}
