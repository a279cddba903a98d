/// The pieces of a FHIR R4 AuditEvent that every MedLedger service builds alike: codings, the
/// reporting service as `source`, the caller as `agent`, and the entities for a resource and
/// its patient.
package enum AuditEventParts {
    package static let dicom = "http://dicom.nema.org/resources/ontology/DCM"
    package static let userSystem = "urn:medledger:identity:user"
    package static let clientSystem = "urn:medledger:identity:client"

    package static func coding(_ system: String, _ code: String, _ display: String) -> JSONValue {
        .object([("system", .string(system)), ("code", .string(code)), ("display", .string(display))])
    }

    /// The purpose of emergency access (v3-ActReason BTG).
    package static let breakTheGlass = coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "BTG", "break the glass")

    /// The event type of a FHIR REST interaction; its subtype is `restfulInteraction(…)`.
    package static let restType = coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "RESTful Operation")

    /// `create`, `read`, `update`, `delete`, `search-type`, … (the restful-interaction code system).
    package static func restfulInteraction(_ code: String) -> JSONValue {
        coding("http://hl7.org/fhir/restful-interaction", code, code)
    }

    /// `type`: the security-source-type code and display (4 Application Server, 6 Security Server).
    package static func source(site: String, type: (code: String, display: String)) -> JSONValue {
        .object([
            ("site", .string(site)),
            ("observer", .object([("display", .string(site))])),
            ("type", .array([coding("http://terminology.hl7.org/CodeSystem/security-source-type", type.code, type.display)])),
        ])
    }

    /// A FHIR resource (`Type/id/_history/n`) the event is about.
    package static func resourceEntity(_ reference: String) -> JSONValue {
        .object([
            ("what", .object([("reference", .string(reference))])),
            ("type", coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object")),
            ("role", coding("http://terminology.hl7.org/CodeSystem/object-role", "4", "Domain Resource")),
        ])
    }

    /// The patient (`Patient/x`) the event concerns: what a patient's audit view searches by.
    package static func patientEntity(_ reference: String, description: String? = nil) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("what", .object([("reference", .string(reference))])),
            ("type", coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person")),
            ("role", coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient")),
        ]
        if let description { members.append(("description", .string(description))) }
        return .object(members)
    }
}

extension Caller {
    /// The caller as the requesting agent: its `fhirUser`, its account or client, its address.
    package var auditAgent: JSONValue {
        var who: [(key: String, value: JSONValue)] = []
        if let fhirUser { who.append(("reference", .string(fhirUser))) }
        let system = isClient ? AuditEventParts.clientSystem : AuditEventParts.userSystem
        who.append(("identifier", .object([("system", .string(system)), ("value", .string(subject))])))
        let type = AuditEventParts.coding(
            "http://terminology.hl7.org/CodeSystem/extra-security-role-type", isClient ? "datacollector" : "humanuser",
            isClient ? "data collector" : "human user")
        return .object([
            ("type", .object([("coding", .array([type]))])),
            ("who", .object(who)),
            ("requestor", .bool(true)),
            ("network", .object([("address", .string(address)), ("type", .string("2"))])),
        ])
    }
}
