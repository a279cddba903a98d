/// AuditEvent's elements in FHIR R4 (auditevent.html), for the structural check every ingested
/// event passes: the required ones (`type`, `recorded`, `agent` with `requestor`, `source` with
/// `observer`) and the required value sets (`action`, `outcome`, `agent.network.type`). Audit
/// refuses events that fail it; senders check their events with it before delivery.
package enum AuditEventElements {
    package static let actions = ["C", "R", "U", "D", "E"]
    package static let outcomes = ["0", "4", "8", "12"]

    package static let network: [ElementRule] = [.one("address", .string), .one("type", .codeIn(["1", "2", "3", "4", "5"]))]
    package static let agent: [ElementRule] = [
        .one("type", .codeableConcept), .many("role", .codeableConcept), .one("who", .reference(targets: nil)), .one("altId", .string),
        .one("name", .string), .one("requestor", .boolean, required: true), .one("location", .reference(targets: ["Location"])),
        .many("policy", .uri), .one("media", .coding), .one("network", .backbone("network", network)), .many("purposeOfUse", .codeableConcept),
    ]
    package static let source: [ElementRule] = [.one("site", .string), .one("observer", .reference(targets: nil), required: true), .many("type", .coding)]
    package static let detail: [ElementRule] = [
        .one("type", .string, required: true), .one("valueString", .string), .one("valueBase64Binary", .base64Binary),
    ]
    package static let entity: [ElementRule] = [
        .one("what", .reference(targets: nil)), .one("type", .coding), .one("role", .coding), .one("lifecycle", .coding),
        .many("securityLabel", .coding), .one("name", .string), .one("description", .string), .one("query", .base64Binary),
        .many("detail", .backbone("detail", detail)),
    ]

    package static let all: [ElementRule] =
        DataTypeRules.domainResource + [
            .one("type", .coding, required: true), .many("subtype", .coding), .one("action", .codeIn(actions)), .one("period", .period),
            .one("recorded", .instant, required: true), .one("outcome", .codeIn(outcomes)), .one("outcomeDesc", .string),
            .many("purposeOfEvent", .codeableConcept), .many("agent", .backbone("agent", agent)),
            .one("source", .backbone("source", source), required: true), .many("entity", .backbone("entity", entity)),
        ]

    /// The issues of `event` as an R4 AuditEvent; empty when it is one.
    package static func issues(_ event: JSONValue) -> [ValidationIssue] {
        var checker = ValidationChecker()
        guard let node = checker.checkResource(event, as: "AuditEvent", rules: all) else { return checker.issues }
        // Cardinalities the element rules cannot say.
        if node["agent"] == nil { checker.report("AuditEvent.agent", "agent is required (one or more, each with requestor)") }
        for (e, entity) in (node["entity"]?.arrayValue ?? []).enumerated() {
            for (d, detail) in (entity["detail"]?.arrayValue ?? []).enumerated()
            where (detail["valueString"] == nil) == (detail["valueBase64Binary"] == nil) {
                checker.report("AuditEvent.entity[\(e)].detail[\(d)]", "detail takes one value[x]: valueString or valueBase64Binary")
            }
        }
        return checker.issues
    }
}
