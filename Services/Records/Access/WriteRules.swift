import HTTPTypes
import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// The checks every write passes before it is stored, beyond the caller's scopes: structure,
/// references that must resolve, who may write for which patient, and what the server fills in
/// (a doctor's approval, attachment hashes).
struct WriteRules {
    let deps: RecordsDependencies
    let caller: Caller
    let rule: AccessRule
    let logger: Logger

    /// Checks `resource` and returns what to store as the next version of `type/id`.
    func draft(_ resource: JSONValue, type: ResourceType, id: String, previous: StoredVersion?, on connection: PostgresConnection) async throws
        -> VersionDraft
    {
        let issues = ResourceValidator.validate(resource, as: type)
        guard issues.isEmpty else {
            throw Problem.invalidResource(issues.map { FHIRIssue(code: "invalid", diagnostics: $0.message, expression: $0.expression) })
        }
        var resource = resource
        let keyOwner: String
        var approval = false
        switch type {
        case .practitioner:
            keyOwner = DataKeyStore.sharedOwner
        case .patient:
            try await checkGeneralPractitioners(resource, on: connection)
            keyOwner = "Patient/\(id)"
        case .diagnosticReport:
            let patient = try await writablePatient(resource["subject"], expression: "DiagnosticReport.subject", on: connection)
            try checkTechnologist(status: resource["status"]?.stringValue, previous: previous)
            resource = stampInterpreter(resource)
            approval = resource["status"]?.stringValue == "final" && previous?.status != "final"
            resource = try await completePresentedForms(resource, patient: patient, on: connection)
            keyOwner = "Patient/\(patient)"
        case .binary:
            let patient = try await writablePatient(resource["securityContext"], expression: "Binary.securityContext", on: connection)
            keyOwner = "Patient/\(patient)"
        }
        let facts = SearchIndexer.facts(resource, type: type, id: id, base: deps.base)
        return VersionDraft(type: type, id: id, resource: resource, facts: facts, keyOwner: keyOwner, writtenBy: caller.author, approval: approval)
    }

    /// The patient a report or Binary belongs to, if the caller may write for them: any
    /// registered patient for technologists and trusted systems, assigned ones for doctors.
    /// Unknown and forbidden patients get the same answer, so it reveals nothing.
    func writablePatient(_ reference: JSONValue?, expression: String, on connection: PostgresConnection) async throws -> String {
        guard let id = FHIRReference.localID(of: reference, type: ResourceType.patient.rawValue, base: deps.base) else {
            throw invalid(expression, "\(expression.split(separator: ".").last ?? "") must reference a Patient of this server (Patient/{id})")
        }
        let allowed: Bool
        switch rule {
        case .all, .authoredBy:
            allowed = try await ResourceReads.exists(.patient, id: id, on: connection, logger: logger)
        case .assignedTo:
            allowed = try await ResourceReads.visible(.patient, id: id, rule: rule, on: connection, logger: logger)
        case .none, .ownedBy, .granted, .anyOf:
            // Consent grants reading only; writes go by the caller's own rule, which is never these two.
            allowed = false
        }
        guard allowed else { throw invalid(expression, "Patient/\(id) is not a patient you may write for (unknown, or not in your care)") }
        return id
    }

    private func checkGeneralPractitioners(_ resource: JSONValue, on connection: PostgresConnection) async throws {
        for (index, reference) in (resource["generalPractitioner"]?.arrayValue ?? []).enumerated() {
            // Records holds Practitioners only; a doctor's assignment must name one that exists.
            guard reference["reference"] != nil else { continue }
            guard let id = FHIRReference.localID(of: reference, type: ResourceType.practitioner.rawValue, base: deps.base),
                try await ResourceReads.exists(.practitioner, id: id, on: connection, logger: logger)
            else {
                throw invalid("Patient.generalPractitioner[\(index)]", "generalPractitioner must reference a Practitioner stored here")
            }
        }
    }

    /// Technologists upload reports for a doctor to approve: `preliminary` only, and only
    /// while the report still is.
    private func checkTechnologist(status: String?, previous: StoredVersion?) throws(Problem) {
        guard caller.role == .technologist else { return }
        guard status == "preliminary" else { throw Problem.forbidden("technologists write preliminary reports only; a doctor approves them") }
        if let previous, previous.status != "preliminary" {
            throw Problem.forbidden("this report is \(previous.status ?? "not preliminary") already; only a doctor may change it")
        }
    }

    /// A doctor's approval is recorded in `resultsInterpreter` (design guide, approval workflow).
    private func stampInterpreter(_ resource: JSONValue) -> JSONValue {
        guard caller.role == .doctor, let doctor = caller.fhirUser, AccessRule.releasedStatuses.contains(resource["status"]?.stringValue ?? "") else {
            return resource
        }
        var interpreters = resource["resultsInterpreter"]?.arrayValue ?? []
        guard !interpreters.contains(where: { $0["reference"]?.stringValue == doctor }) else { return resource }
        interpreters.append(.object([("reference", .string(doctor))]))
        return ResourceStamp.setting("resultsInterpreter", to: .array(interpreters), in: resource)
    }

    /// `presentedForm` entries naming a stored Binary get its content type, size and SHA-1
    /// (R4 Attachment.hash); values the client sent must agree with the stored content.
    private func completePresentedForms(_ resource: JSONValue, patient: String, on connection: PostgresConnection) async throws -> JSONValue {
        guard var forms = resource["presentedForm"]?.arrayValue else { return resource }
        for (index, form) in forms.enumerated() {
            let path = "DiagnosticReport.presentedForm[\(index)]"
            guard case .object(var members) = form, let url = form["url"]?.stringValue, let local = FHIRReference.local(url, base: deps.base),
                local.type == "Binary"
            else { continue }
            guard let info = try await BinaryStore.info(local.id, keys: deps.keys, on: connection, logger: logger), info.patient == patient else {
                throw invalid("\(path).url", "Binary/\(local.id) is not a stored Binary of Patient/\(patient)")
            }
            let hash = info.sha1.base64String
            if let sent = form["hash"]?.stringValue, sent != hash {
                throw invalid("\(path).hash", "hash does not match the SHA-1 of Binary/\(local.id) (\(hash))")
            }
            if let sent = form["size"], sent != .number(String(info.size)) {
                throw invalid("\(path).size", "size does not match Binary/\(local.id) (\(info.size) bytes)")
            }
            if form["contentType"] == nil { members.append(("contentType", .string(info.contentType))) }
            if form["size"] == nil { members.append(("size", .number(String(info.size)))) }
            if form["hash"] == nil { members.append(("hash", .string(hash))) }
            forms[index] = .object(members)
        }
        return ResourceStamp.setting("presentedForm", to: .array(forms), in: resource)
    }

    private func invalid(_ expression: String, _ message: String) -> Problem {
        Problem.invalidResource([FHIRIssue(code: "invalid", diagnostics: message, expression: expression)])
    }
}
