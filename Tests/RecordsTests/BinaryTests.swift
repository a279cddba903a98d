import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import TestSupport
import Testing

@Suite struct BinaryTests {
    @Test func contentRoundTripsInChunksAndReportsCarryItsHash() async throws {
        let fixture = try await RecordsFixture.make("binary")
        try await fixture.app().test(.router) { client in
            let patient = try await client.create("Patient", Sample.patient("Scan"), token: try await fixture.token(.receptionist))
            let tech = try await fixture.token(.technologist, fhirUser: "Practitioner/t")
            let content = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
            let upload = try await client.execute(
                uri: "/fhir/Binary", method: .post,
                headers: [.authorization: "Bearer \(tech)", .contentType: "application/pdf", HTTPField.Name("X-Security-Context")!: "Patient/\(patient)"],
                body: ByteBuffer(bytes: content))
            #expect(upload.status == .created)
            let id = try #require(try JSONParser.parse(upload.body.readableBytesView)["id"]?.stringValue)
            let raw = try await client.execute(uri: "/fhir/Binary/\(id)", method: .get, headers: [.authorization: "Bearer \(tech)"])
            #expect(raw.status == .ok && raw.headers[.contentType] == "application/pdf")
            #expect(Array(raw.body.readableBytesView) == content)
            let json = try await client.fhir(.get, "/fhir/Binary/\(id)", token: tech, headers: [.accept: "application/fhir+json"])
            #expect(json.json?["data"]?.stringValue.flatMap(Base64.decode) == content)

            let sha1 = Data(Insecure.SHA1.hash(data: content)).base64EncodedString()
            let form = #","presentedForm":[{"url":"Binary/\#(id)"}]"#
            let report = try await client.fhir(.post, "/fhir/DiagnosticReport", token: tech, body: Sample.report(patient: patient, extra: form))
            #expect(report.status == .created)
            let attachment = report.json?["presentedForm"]?.arrayValue?.first
            #expect(attachment?["hash"]?.stringValue == sha1)
            #expect(attachment?["size"] == .number("200000"))
            #expect(attachment?["contentType"]?.stringValue == "application/pdf")
            let wrong = #","presentedForm":[{"url":"Binary/\#(id)","hash":"\#(Data(repeating: 1, count: 20).base64EncodedString())"}]"#
            #expect(try await client.fhir(.post, "/fhir/DiagnosticReport", token: tech, body: Sample.report(patient: patient, extra: wrong)).status == .unprocessableContent)

            // JSON upload, and the size limit (BINARY_MAX_BYTES=300000 in the fixture).
            let small = #"{"resourceType":"Binary","contentType":"text/plain","securityContext":{"reference":"Patient/\#(patient)"},"data":"aGVsbG8="}"#
            let created = try await client.fhir(.post, "/fhir/Binary", token: tech, body: small)
            #expect(created.status == .created && created.json?["data"] == nil)
            let tooBig = try await client.execute(
                uri: "/fhir/Binary", method: .post,
                headers: [.authorization: "Bearer \(tech)", .contentType: "application/octet-stream", HTTPField.Name("X-Security-Context")!: "Patient/\(patient)"],
                body: ByteBuffer(bytes: [UInt8](repeating: 0, count: 300_001)))
            #expect(tooBig.status == .contentTooLarge)
            let noContext = try await client.fhir(.post, "/fhir/Binary", token: tech, body: "x", headers: [.contentType: "text/plain"])
            #expect(noContext.status == .unprocessableContent)
            // The content type is sent back as a header: media types only, raw or as JSON.
            let notMedia = try await client.execute(
                uri: "/fhir/Binary", method: .post,
                headers: [.authorization: "Bearer \(tech)", .contentType: "pdf", HTTPField.Name("X-Security-Context")!: "Patient/\(patient)"],
                body: ByteBuffer(bytes: [1]))
            #expect(notMedia.status == .unsupportedMediaType)
            let notMediaJSON = small.replacingOccurrences(of: "text/plain", with: "pdf")
            #expect(try await client.fhir(.post, "/fhir/Binary", token: tech, body: notMediaJSON).status == .unprocessableContent)
            // Binary is immutable: 405 even for a caller without update scope (technologists have Binary.cr).
            let put = try await client.fhir(.put, "/fhir/Binary/\(id)", token: tech, body: small)
            #expect(put.status == .methodNotAllowed && put.headers[.allow] == "GET, DELETE")
        }
    }
}
