import HTTPTypes
import Foundation
import Hummingbird
import Logging
import MedLedgerCore
import PostgresNIO

/// create, read, vread, update and delete (FHIR http.html) for every type records serves.
struct ResourceController {
    let deps: RecordsDependencies

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.post("{type}") { request, context in try await create(request, context: context) }
        routes.get("{type}/{id}") { request, context in try await read(request, context: context) }
        routes.get("{type}/{id}/_history/{vid}") { request, context in try await vread(request, context: context) }
        routes.put("{type}/{id}") { request, context in try await update(request, context: context) }
        routes.delete("{type}/{id}") { request, context in try await delete(request, context: context) }
        return routes
    }

    func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let interaction = try FHIRInteraction(deps: deps, context: context, type: try context.parameters.require("type"))
        try FHIRHTTP.requireJSON(request)
        if interaction.type == .binary, !Self.isJSONBody(request) {
            return try await BinaryController(deps: deps).createRaw(request, interaction: interaction)
        }
        try interaction.caller.require(.create, on: interaction.type)
        try FHIRHTTP.requireJSONBody(request)
        let limit = interaction.type == .binary ? deps.config.binaryJSONMaxBytes : deps.config.resourceMaxBytes
        let resource = try await FHIRHTTP.resourceBody(request, type: interaction.type.rawValue, limit: limit)
        if interaction.type == .binary {
            return try await BinaryController(deps: deps).createJSON(resource, request: request, interaction: interaction)
        }
        let conditional = try request.headers[HTTPField.Name("If-None-Exist")!].map { text throws(Problem) in
            try ConditionalCreate(query: text, type: interaction.type)
        }
        let id = UUID().uuidString.lowercased()
        let writer = WriteRules(deps: deps, caller: interaction.caller, rule: interaction.ownRule, logger: interaction.logger)
        let result = try await deps.writeTransaction(logger: interaction.logger) { connection -> (WrittenVersion, Bool) in
            if let conditional, let existing = try await conditional.existing(interaction, on: connection) {
                return (existing, false)
            }
            let draft = try await writer.draft(resource, type: interaction.type, id: id, previous: nil, on: connection)
            let key = try await deps.keys.key(for: draft.keyOwner, on: connection, logger: interaction.logger)
            let written = try await deps.store.write(
                draft, version: 1, author: interaction.caller.author, key: key, event: interaction.event(.create), on: connection, logger: interaction.logger)
            return (written, true)
        }
        if !result.1 {
            try await deps.audit.record(interaction.event(.read, entity: result.0.stored.versionReference, patient: result.0.stored.patient))
        }
        return FHIRHTTP.writeResponse(result.0, status: result.1 ? .created : .ok, request: request, base: deps.base)
    }

    func read(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let interaction = try FHIRInteraction(deps: deps, context: context, type: try context.parameters.require("type"))
        let id = try context.parameters.require("id")
        if interaction.type == .binary, request.queryText("_format") == nil, Self.prefersRaw(request) {
            return try await BinaryController(deps: deps).readRaw(id: id, request: request, interaction: interaction)
        }
        try FHIRHTTP.requireJSON(request)
        try interaction.caller.require(.read, on: interaction.type)
        return try await interaction.auditingFailures(interaction.event(.read, entity: "\(interaction.type.rawValue)/\(id)")) {
            let access = await interaction.readAccess()
            let stored = try await deps.postgres.withConnection { connection in
                let rule = try await access.rule(on: interaction.type, id: id, on: connection, logger: interaction.logger)
                return try await ResourceReads.current(interaction.type, id: id, rule: rule, on: connection, logger: interaction.logger)
            }
            guard let stored else { throw access.hidden("\(interaction.type.rawValue)/\(id) is not known") }
            var body = try await interaction.body(of: stored)
            if stored.type == .binary { body = try await BinaryController(deps: deps).jsonWithData(body, stored: stored, logger: interaction.logger) }
            var event = interaction.event(.read, entity: stored.versionReference, patient: stored.patient)
            event.breakGlass = access.breakGlass(for: stored.patient)
            try await deps.audit.record(event)
            return FHIRHTTP.resourceResponse(body, stored: stored, base: deps.base)
        }
    }

    func vread(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let interaction = try FHIRInteraction(deps: deps, context: context, type: try context.parameters.require("type"))
        let id = try context.parameters.require("id")
        try FHIRHTTP.requireJSON(request)
        try interaction.caller.require(.read, on: interaction.type)
        guard let version = Int(try context.parameters.require("vid")), version > 0 else {
            throw Problem.notFound("\(interaction.type.rawValue)/\(id) has no such version")
        }
        let reference = "\(interaction.type.rawValue)/\(id)/_history/\(version)"
        return try await interaction.auditingFailures(interaction.event(.vread, entity: reference)) {
            let access = await interaction.readAccess()
            let stored = try await deps.postgres.withConnection { connection in
                let rule = try await access.rule(on: interaction.type, id: id, on: connection, logger: interaction.logger)
                return try await ResourceReads.version(interaction.type, id: id, version: version, rule: rule, on: connection, logger: interaction.logger)
            }
            guard let stored else { throw access.hidden("\(reference) is not known") }
            var body = try await interaction.body(of: stored)
            if stored.type == .binary { body = try await BinaryController(deps: deps).jsonWithData(body, stored: stored, logger: interaction.logger) }
            var event = interaction.event(.vread, entity: reference, patient: stored.patient)
            event.breakGlass = access.breakGlass(for: stored.patient)
            try await deps.audit.record(event)
            return FHIRHTTP.resourceResponse(body, stored: stored, base: deps.base)
        }
    }

    func update(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let interaction = try FHIRInteraction(deps: deps, context: context, type: try context.parameters.require("type"))
        let id = try context.parameters.require("id")
        // No scope or format makes this allowed, so a 403 or 406 would only mislead.
        guard interaction.type != .binary else {
            throw Problem(.methodNotAllowed, "Binary content is immutable here (reports hash it): create a new Binary instead", headers: [.allow: "GET, DELETE"])
        }
        try FHIRHTTP.requireJSON(request)
        try interaction.caller.require(.update, on: interaction.type)
        try FHIRHTTP.requireJSONBody(request)
        let resource = try await FHIRHTTP.resourceBody(request, type: interaction.type.rawValue, limit: deps.config.resourceMaxBytes)
        guard resource["id"]?.stringValue == id else {
            throw Problem.badRequest("the resource's id must be present and equal to the id in the URL (\(id))")
        }
        let expected = try FHIRHTTP.ifMatch(request)
        let writer = WriteRules(deps: deps, caller: interaction.caller, rule: interaction.ownRule, logger: interaction.logger)
        let written = try await interaction.auditingFailures(interaction.event(.update, entity: "\(interaction.type.rawValue)/\(id)")) {
            try await deps.writeTransaction(logger: interaction.logger) { connection in
                let current = try await Self.lockCurrent(interaction, id: id, expected: expected, on: connection)
                let draft = try await writer.draft(resource, type: interaction.type, id: id, previous: current, on: connection)
                let key = try await deps.keys.key(for: draft.keyOwner, on: connection, logger: interaction.logger)
                return try await deps.store.write(
                    draft, version: current.version + 1, author: current.author, key: key, event: interaction.event(.update), on: connection,
                    logger: interaction.logger)
            }
        }
        return FHIRHTTP.writeResponse(written, status: .ok, request: request, base: deps.base)
    }

    func delete(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let interaction = try FHIRInteraction(deps: deps, context: context, type: try context.parameters.require("type"))
        let id = try context.parameters.require("id")
        try FHIRHTTP.requireJSON(request)
        try interaction.caller.require(.delete, on: interaction.type)
        let expected = try FHIRHTTP.ifMatch(request)
        let deleted = try await interaction.auditingFailures(interaction.event(.delete, entity: "\(interaction.type.rawValue)/\(id)")) {
            try await deps.writeTransaction(logger: interaction.logger) { connection -> StoredVersion in
                guard
                    let current = try await ResourceReads.current(
                        interaction.type, id: id, rule: interaction.ownRule, lock: true, on: connection, logger: interaction.logger)
                else { throw Problem.notFound("\(interaction.type.rawValue)/\(id) is not known") }
                if let expected, expected != current.version {
                    throw Problem(.preconditionFailed, "If-Match names version \(expected) but the current version is \(current.version)")
                }
                // Deleting what is already deleted changes nothing (FHIR: delete is idempotent).
                if current.deleted { return current }
                return try await deps.store.delete(current, writtenBy: interaction.caller.author, event: interaction.event(.delete), on: connection, logger: interaction.logger)
            }
        }
        return Response(status: .noContent, headers: [.eTag: "W/\"\(deleted.version)\""])
    }

    /// The current version of a resource about to be updated, row-locked so that concurrent
    /// updates with the same `If-Match` have exactly one winner.
    static func lockCurrent(_ interaction: FHIRInteraction, id: String, expected: Int?, on connection: PostgresConnection) async throws -> StoredVersion {
        guard
            let current = try await ResourceReads.current(
                interaction.type, id: id, rule: interaction.ownRule, lock: true, on: connection, logger: interaction.logger)
        else { throw Problem.notFound("\(interaction.type.rawValue)/\(id) is not known (update cannot create resources here)") }
        if current.deleted { throw Problem(.gone, "\(interaction.type.rawValue)/\(id) was deleted") }
        // Erased (crypto-shredding): writing would make the patient a new data key and bring them back.
        guard try await interaction.deps.keys.existingKey(for: current.keyOwner, on: connection, logger: interaction.logger) != nil else {
            throw Problem(.gone, "\(interaction.type.rawValue)/\(id) was erased (its data key was destroyed)")
        }
        if let expected, expected != current.version {
            throw Problem(.preconditionFailed, "If-Match names version \(expected) but the current version is \(current.version)")
        }
        return current
    }

    static func isJSONBody(_ request: Request) -> Bool {
        guard let header = request.headers[.contentType] else { return true }
        let type = header.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        return FHIRHTTP.jsonTypes.contains(type)
    }

    /// A Binary read answers the raw content unless FHIR JSON is asked for by name.
    static func prefersRaw(_ request: Request) -> Bool {
        !FHIRHTTP.acceptedTypes(request).contains { FHIRHTTP.jsonTypes.contains($0) }
    }
}
