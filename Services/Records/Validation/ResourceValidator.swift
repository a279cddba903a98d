import MedLedgerCore

/// Structural FHIR R4 validation of the types records serves: JSON rules, known elements' types and
/// shapes, required elements, required value sets and reference shapes. Unknown elements are kept,
/// not flagged; whether referenced resources exist is the service's business, not this one's.
enum ResourceValidator {
    /// Structural R4 checks for the records types. Returns every problem found (empty = valid).
    /// `resource` is the parsed body; it is already known to be a JSON object.
    static func validate(_ resource: JSONValue, as type: ResourceType) -> [ValidationIssue] {
        var checker = ValidationChecker()
        guard let node = checker.checkResource(resource, as: type.rawValue, rules: rules(for: type)) else { return checker.issues }
        switch type {
        case .patient:
            checkChoice(node, "deceased", variants: ["deceasedBoolean", "deceasedDateTime"], checker: &checker)
        case .diagnosticReport:
            checkChoice(node, "effective", variants: ["effectiveDateTime", "effectivePeriod"], checker: &checker)
        case .practitioner, .binary:
            break
        }
        return checker.issues
    }

    static func rules(for type: ResourceType) -> [ElementRule] {
        switch type {
        case .patient: patient
        case .practitioner: practitioner
        case .diagnosticReport: diagnosticReport
        case .binary: binary
        }
    }

    /// A choice element `name[x]` has at most one variant. The expression is the FHIRPath of the choice (`DiagnosticReport.effective`).
    private static func checkChoice(_ node: ObjectNode, _ name: String, variants: [String], checker: inout ValidationChecker) {
        let present = variants.filter { node[$0] != nil }
        if present.count > 1 {
            checker.report(node.path + "." + name, "\(name)[x] must have only one of \(present.joined(separator: ", "))")
        }
    }

    static let diagnosticReportStatuses = [
        "registered", "partial", "preliminary", "final", "amended", "corrected", "appended", "cancelled", "entered-in-error", "unknown",
    ]
    static let genders = ["male", "female", "other", "unknown"]


    private static let patient: [ElementRule] =
        DataTypeRules.domainResource + [
            .many("identifier", .identifier), .one("active", .boolean), .many("name", .humanName), .many("telecom", .contactPoint),
            .one("gender", .codeIn(genders)), .one("birthDate", .date), .one("deceasedBoolean", .boolean), .one("deceasedDateTime", .dateTime),
            .many("address", .address), .many("generalPractitioner", .reference(targets: ["Practitioner", "Organization", "PractitionerRole"])),
            .one("managingOrganization", .reference(targets: nil)),
        ]

    private static let practitioner: [ElementRule] =
        DataTypeRules.domainResource + [
            .many("identifier", .identifier), .one("active", .boolean), .many("name", .humanName), .many("telecom", .contactPoint),
            .many("address", .address), .one("gender", .codeIn(genders)), .one("birthDate", .date),
        ]

    private static let diagnosticReport: [ElementRule] =
        DataTypeRules.domainResource + [
            .many("identifier", .identifier), .many("basedOn", .reference(targets: nil)),
            .one("status", .codeIn(diagnosticReportStatuses), required: true), .many("category", .codeableConcept),
            .one("code", .codeableConcept, required: true), .one("subject", .reference(targets: ["Patient"])),
            .one("encounter", .reference(targets: nil)), .one("effectiveDateTime", .dateTime), .one("effectivePeriod", .period),
            .one("issued", .instant), .many("performer", .reference(targets: nil)), .many("resultsInterpreter", .reference(targets: nil)),
            .many("specimen", .reference(targets: nil)), .many("result", .reference(targets: nil)), .many("imagingStudy", .reference(targets: nil)),
            .many("media", .backbone("media element", media)), .one("conclusion", .string), .many("conclusionCode", .codeableConcept),
            .many("presentedForm", .attachment),
        ]

    private static let media: [ElementRule] = [.one("comment", .string), .one("link", .reference(targets: nil), required: true)]

    private static let binary: [ElementRule] =
        DataTypeRules.resource + [
            .one("contentType", .mimeType, required: true), .one("securityContext", .reference(targets: ["Patient"])),
            .one("data", .base64Binary),
        ]
}
