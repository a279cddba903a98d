import HTTPTypes
import Foundation
import Hummingbird
import Logging
import MedLedgerCore
import NIOCore
import PostgresNIO

/// Binary: uploaded raw (`Content-Type` + `X-Security-Context: Patient/{id}`, the FHIR way) or
/// as FHIR JSON with base64 `data`; stored sealed in chunks; read back raw or as JSON.
struct BinaryController {
    let deps: RecordsDependencies

    static let securityContext = HTTPField.Name("X-Security-Context")!

    func createRaw(_ request: Request, interaction: FHIRInteraction) async throws -> Response {
        try interaction.caller.require(.create, on: .binary)
        guard let contentType = request.headers[.contentType], Self.isValidContentType(contentType) else {
            throw Problem(.unsupportedMediaType, "a raw Binary upload needs a Content-Type naming what it is (e.g. application/pdf)")
        }
        guard let context = request.headers[Self.securityContext] else {
            throw Problem.invalidResource([
                FHIRIssue(code: "required", diagnostics: "a raw Binary upload needs X-Security-Context: Patient/{id}", expression: "Binary.securityContext")
            ])
        }
        let resource = JSONValue.object([
            ("resourceType", .string("Binary")), ("contentType", .string(contentType)),
            ("securityContext", .object([("reference", .string(context))])),
        ])
        return try await store(resource, content: request.body, request: request, interaction: interaction)
    }

    func createJSON(_ resource: JSONValue, request: Request, interaction: FHIRInteraction) async throws -> Response {
        let data = resource["data"]?.stringValue ?? ""
        // The validator checks `data` is base64 before anything is decoded.
        let issues = ResourceValidator.validate(resource, as: .binary)
        guard issues.isEmpty else {
            throw Problem.invalidResource(issues.map { FHIRIssue(code: "invalid", diagnostics: $0.message, expression: $0.expression) })
        }
        guard let content = Base64.decode(data) else {
            throw Problem.invalidResource([FHIRIssue(code: "invalid", diagnostics: "data must be base64", expression: "Binary.data")])
        }
        guard content.count <= deps.config.binaryMaxBytes else {
            throw Problem(.contentTooLarge, "the Binary content is larger than \(deps.config.binaryMaxBytes) bytes")
        }
        let pieces = stride(from: 0, to: content.count, by: ChunkCipher.chunkSize).map { ByteBuffer(bytes: content[$0..<min($0 + ChunkCipher.chunkSize, content.count)]) }
        return try await store(ResourceStamp.setting("data", to: nil, in: resource), content: AsyncPieces(pieces: pieces), request: request, interaction: interaction)
    }

    /// Stores the Binary's JSON (without `data`) as its version body and the content as chunks,
    /// all in one transaction.
    private func store<Pieces: AsyncSequence>(_ resource: JSONValue, content: Pieces, request: Request, interaction: FHIRInteraction) async throws -> Response
    where Pieces.Element == ByteBuffer {
        let id = UUID().uuidString.lowercased()
        let writer = WriteRules(deps: deps, caller: interaction.caller, rule: interaction.ownRule, logger: interaction.logger)
        let contentType = resource["contentType"]?.stringValue ?? "application/octet-stream"
        let written = try await deps.writeTransaction(logger: interaction.logger) { connection in
            var draft = try await writer.draft(resource, type: .binary, id: id, previous: nil, on: connection)
            let key = try await deps.keys.key(for: draft.keyOwner, on: connection, logger: interaction.logger)
            let salt = LedgerEntry.randomSalt()
            let stored = try await BinaryStore.write(
                content, id: id, version: 1, contentType: contentType, key: key, salt: salt, limit: deps.config.binaryMaxBytes, on: connection,
                logger: interaction.logger)
            draft.contentCommitment = (salt, stored.commitment)
            return try await deps.store.write(
                draft, version: 1, author: interaction.caller.author, key: key, event: interaction.event(.create), on: connection,
                logger: interaction.logger)
        }
        return FHIRHTTP.writeResponse(written, status: .created, request: request, base: deps.base)
    }

    /// The raw content with its own Content-Type, streamed.
    func readRaw(id: String, request: Request, interaction: FHIRInteraction) async throws -> Response {
        try interaction.caller.require(.read, on: .binary)
        return try await interaction.auditingFailures(interaction.event(.read, entity: "Binary/\(id)")) {
            let access = await interaction.readAccess()
            let stored = try await deps.postgres.withConnection { connection in
                let rule = try await access.rule(on: .binary, id: id, on: connection, logger: interaction.logger)
                return try await ResourceReads.current(.binary, id: id, rule: rule, on: connection, logger: interaction.logger)
            }
            guard let stored else { throw access.hidden("Binary/\(id) is not known") }
            let body = try await interaction.body(of: stored)
            guard let key = try await deps.keys.existingKey(for: stored.keyOwner, logger: interaction.logger) else {
                throw Problem(.gone, "Binary/\(id) was erased")
            }
            let contentType = (try? JSONParser.parse(body))?["contentType"]?.stringValue ?? "application/octet-stream"
            var event = interaction.event(.read, entity: stored.versionReference, patient: stored.patient)
            event.breakGlass = access.breakGlass(for: stored.patient)
            try await deps.audit.record(event)
            var headers = FHIRHTTP.versionHeaders(stored, base: deps.base, location: false)
            headers[.contentType] = contentType
            headers[.contentDisposition] = "attachment"
            headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
            let (postgres, logger) = (deps.postgres, interaction.logger)
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    try await BinaryStore.read(stored, key: key, postgres: postgres, logger: logger) { piece in try await writer.write(piece) }
                    try await writer.finish(nil)
                })
        }
    }

    /// The Binary's stored JSON with its content as base64 `data` (a FHIR JSON read).
    func jsonWithData(_ body: [UInt8], stored: StoredVersion, logger: Logger) async throws -> [UInt8] {
        guard let key = try await deps.keys.existingKey(for: stored.keyOwner, logger: logger) else { throw Problem(.gone, "\(stored.reference) was erased") }
        var content: [UInt8] = []
        try await BinaryStore.read(stored, key: key, postgres: deps.postgres, logger: logger) { piece in content += piece.readableBytesView }
        let resource = try JSONParser.parse(body)
        return ResourceStamp.setting("data", to: content.isEmpty ? nil : .string(content.base64String), in: resource).serialized()
    }

    /// The rule a FHIR JSON Binary's `contentType` follows too: it is sent back as this header.
    static func isValidContentType(_ text: String) -> Bool {
        PrimitiveSyntax.isMimeType(text)
    }
}

/// Already-decoded content handed to the chunk writer as if it streamed in.
struct AsyncPieces: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let pieces: [ByteBuffer]

    struct AsyncIterator: AsyncIteratorProtocol {
        var iterator: IndexingIterator<[ByteBuffer]>
        mutating func next() async -> ByteBuffer? { iterator.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(iterator: pieces.makeIterator()) }
}
