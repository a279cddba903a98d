import Foundation
import MedLedgerCore

/// What consent tells the audit service: a FHIR R4 AuditEvent per consent change (a REST
/// interaction on the Consent) and per break-glass start or end (a high-severity security alert
/// the patient's audit view shows).
struct ConsentAuditEvent: Sendable {
    enum Kind: Sendable {
        case create, update, delete
        case breakGlassStart, breakGlassEnd
    }

    var kind: Kind
    var caller: Caller
    /// `Patient/x`: whose consent, or whose records the break-glass opens.
    var patient: String
    /// `Consent/id/_history/n` for a consent change.
    var consent: String? = nil
    /// The break-glass session and the reason its doctor gave.
    var session: (id: String, reason: String)? = nil

    static let severityExtension = "https://medledger.dev/fhir/StructureDefinition/severity"
    static let breakGlassSystem = "https://medledger.dev/fhir/CodeSystem/break-glass"
    static let sessionSystem = "urn:medledger:consent:break-glass"

    var row: AuditOutboxRow { AuditOutboxRow(service: "consent", event: resource(recorded: Date())) }

    func resource(recorded: Date) -> JSONValue {
        let coding = AuditEventParts.coding
        var members: [(key: String, value: JSONValue)] = [("resourceType", .string("AuditEvent"))]
        switch kind {
        case .create, .update, .delete:
            let (code, action) = kind == .create ? ("create", "C") : kind == .update ? ("update", "U") : ("delete", "D")
            members += [
                ("type", AuditEventParts.restType), ("subtype", .array([AuditEventParts.restfulInteraction(code)])), ("action", .string(action)),
            ]
        case .breakGlassStart, .breakGlassEnd:
            // R4 has no severity; R5's `severity` (alert: high) as an extension.
            members.append(("extension", .array([.object([("url", .string(Self.severityExtension)), ("valueCode", .string("alert"))])])))
            let (code, display) = kind == .breakGlassStart ? ("start", "break-glass access started") : ("end", "break-glass access ended")
            members += [
                ("type", coding(AuditEventParts.dicom, "110113", "Security Alert")),
                ("subtype", .array([coding(Self.breakGlassSystem, code, display)])),
                ("action", .string("E")),
            ]
        }
        members += [("recorded", .string(FHIRDate.instantText(recorded))), ("outcome", .string("0"))]
        if kind == .breakGlassStart || kind == .breakGlassEnd {
            let reason = coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "BTG", "break the glass")
            members.append(("purposeOfEvent", .array([.object([("coding", .array([reason]))])])))
        }
        members.append(("agent", .array(agents)))
        members.append(("source", AuditEventParts.source(site: "medledger-consent", type: ("4", "Application Server"))))
        var entities: [JSONValue] = []
        if let consent { entities.append(AuditEventParts.resourceEntity(consent)) }
        entities.append(AuditEventParts.patientEntity(patient, description: session?.reason))
        if let session {
            entities.append(
                .object([
                    ("what", .object([("identifier", .object([("system", .string(Self.sessionSystem)), ("value", .string(session.id))]))])),
                    ("type", coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object")),
                    ("role", coding("http://terminology.hl7.org/CodeSystem/object-role", "13", "Security Resource")),
                    ("description", .string(session.reason)),
                ]))
        }
        members.append(("entity", .array(entities)))
        return .object(members)
    }

    /// The caller; for a change made on a patient's behalf (by a receptionist), the patient too.
    private var agents: [JSONValue] {
        guard consent != nil, caller.fhirUser != patient else { return [caller.auditAgent] }
        let role = AuditEventParts.coding("http://terminology.hl7.org/CodeSystem/v3-RoleClass", "PAT", "patient")
        let onBehalfOf: JSONValue = .object([
            ("type", .object([("coding", .array([role]))])), ("who", .object([("reference", .string(patient))])), ("requestor", .bool(false)),
        ])
        return [caller.auditAgent, onBehalfOf]
    }
}
