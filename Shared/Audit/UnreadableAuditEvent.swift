import Foundation

/// What a service delivers in place of an AuditEvent of its own that is not valid FHIR R4 (a bug
/// in its builder, or input nobody foresaw): audit would refuse it, and a refused batch holds up
/// every later event of that outbox. The stand-in is valid, keeps the original whole (its bytes
/// in `entity.detail` "original-event", base64) and the issues found, and names the patients the
/// original named, so it stays in their audit view. Nothing is lost and nothing waits.
package enum UnreadableAuditEvent {
    package static func standIn(for original: JSONValue, issues: [ValidationIssue], service: String) -> JSONValue {
        let site = "medledger-" + service
        let recorded =
            original["recorded"]?.stringValue.flatMap { FHIRDate.range(of: $0, kind: .instant) != nil ? $0 : nil }
            ?? FHIRDate.instantText(Date())
        let listed = issues.prefix(5).map { "\($0.expression): \($0.message)" }.joined(separator: "; ")
        var entities = patients(in: original).map { AuditEventParts.patientEntity($0) }
        entities.append(
            .object([
                ("type", AuditEventParts.coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object")),
                ("description", .string("the AuditEvent \(site) wrote, which is not valid FHIR R4")),
                (
                    "detail",
                    .array([
                        .object([("type", .string("original-event")), ("valueBase64Binary", .string(original.serialized().base64String))]),
                        .object([("type", .string("issues")), ("valueString", .string(listed.isEmpty ? "?" : listed))]),
                    ])
                ),
            ]))
        return .object([
            ("resourceType", .string("AuditEvent")),
            ("type", AuditEventParts.coding(AuditEventParts.dicom, "110100", "Application Activity")),
            ("action", .string("E")),
            ("recorded", .string(recorded)),
            ("outcome", .string("4")),
            ("outcomeDesc", .string("\(site) wrote an AuditEvent that is not valid FHIR R4; it is kept whole in entity.detail (original-event)")),
            ("agent", .array([.object([("who", .object([("display", .string(site))])), ("requestor", .bool(false))])])),
            ("source", AuditEventParts.source(site: site, type: ("4", "Application Server"))),
            ("entity", .array(entities)),
        ])
    }

    /// The well-formed `Patient/id` references among the original's agents and entities.
    private static func patients(in event: JSONValue) -> [String] {
        let references =
            (event["agent"]?.arrayValue ?? []).compactMap { $0["who"]?["reference"]?.stringValue }
            + (event["entity"]?.arrayValue ?? []).compactMap { $0["what"]?["reference"]?.stringValue }
        var found: [String] = []
        for reference in references {
            guard let local = FHIRReference.local(reference, base: ""), local.type == "Patient" else { continue }
            let patient = "Patient/\(local.id)"
            if !found.contains(patient) { found.append(patient) }
        }
        return found
    }
}
