import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import Testing

@Suite struct ErrorMiddlewareTests {
    struct Internal: Error, CustomStringConvertible {
        var description: String { "secret internals: password=hunter2" }
    }

    func app(fhirBase: String? = nil) -> some ApplicationProtocol {
        let router = Router(context: ServiceRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: ErrorMiddleware(fhirBase: fhirBase))
        router.get("/fhir/invalid") { _, _ -> Response in throw Problem(.unprocessableContent, "DiagnosticReport.status is required") }
        router.get("/invalid") { _, _ -> Response in throw Problem(.unprocessableContent, "DiagnosticReport.status is required") }
        router.get("/boom") { _, _ -> Response in throw Internal() }
        router.post("/echo") { request, _ -> Response in Response.json(try await request.jsonBody(limit: 16).serialized()) }
        return Application(router: router)
    }

    @Test func fhirRoutesAnswerWithAnOperationOutcome() async throws {
        try await app(fhirBase: "/fhir").test(.router) { client in
            let response = try await client.execute(uri: "/fhir/invalid", method: .get)
            #expect(response.status == .unprocessableContent)
            #expect(response.headers[.contentType] == "application/fhir+json; charset=utf-8")
            let outcome = try JSONParser.parse(response.body.readableBytesView)
            #expect(outcome["resourceType"]?.stringValue == "OperationOutcome")
            let issue = outcome["issue"]?.arrayValue?.first
            #expect(issue?["severity"]?.stringValue == "error")
            #expect(issue?["code"]?.stringValue == "processing")
            #expect(issue?["diagnostics"]?.stringValue == "DiagnosticReport.status is required")
            let missing = try await client.execute(uri: "/fhir/nowhere", method: .get)
            #expect(missing.status == .notFound)
            #expect(try JSONParser.parse(missing.body.readableBytesView)["issue"]?.arrayValue?.first?["code"]?.stringValue == "not-found")
            // Outside the FHIR base the same errors are problem+json.
            let plain = try await client.execute(uri: "/invalid", method: .get)
            #expect(plain.headers[.contentType] == "application/problem+json")
            #expect(try await client.execute(uri: "/fhirish", method: .get).headers[.contentType] == "application/problem+json")
        }
    }

    @Test func unexpectedErrorsRevealNothingButTheRequestID() async throws {
        try await app().test(.router) { client in
            let response = try await client.execute(uri: "/boom", method: .get, headers: [.requestID: "req-7"])
            #expect(response.status == .internalServerError)
            #expect(response.headers[.contentType] == "application/problem+json")
            let body = String(buffer: response.body)
            #expect(!body.contains("hunter2") && !body.contains("internals"))
            #expect(try JSONParser.parse(Array(body.utf8))["instance"]?.stringValue == "urn:request:req-7")
        }
    }

    @Test func bodyLimitsAndMediaTypes() async throws {
        try await app().test(.router) { client in
            let ok = try await client.execute(uri: "/echo", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: "[1.50]"))
            #expect(String(buffer: ok.body) == "[1.50]")
            let big = try await client.execute(uri: "/echo", method: .post, body: ByteBuffer(string: "[\"0123456789abcdef\"]"))
            #expect(big.status == .contentTooLarge)
            let text = try await client.execute(uri: "/echo", method: .post, headers: [.contentType: "text/plain"], body: ByteBuffer(string: "[]"))
            #expect(text.status == .unsupportedMediaType)
            let fhir = try await client.execute(
                uri: "/echo", method: .post, headers: [.contentType: "application/fhir+json"], body: ByteBuffer(string: "{}")
            )
            #expect(fhir.status == .ok)
        }
    }
}
