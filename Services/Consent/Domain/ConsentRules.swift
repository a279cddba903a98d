import MedLedgerCore

/// The checks a Consent passes before it is stored, and the grant it makes: first FHIR R4's
/// structure and invariants, then what MedLedger supports (a permit for one Practitioner or
/// Organization to access all of a patient's reports, a category, or one report).
enum ConsentRules {
    static let scopeSystem = "http://terminology.hl7.org/CodeSystem/consentscope"
    static let actionSystem = "http://terminology.hl7.org/CodeSystem/consentaction"
    static let categorySystem = "http://terminology.hl7.org/CodeSystem/v2-0074"
    /// Diagnostic service sections (HL7 v2 table 0074), DiagnosticReport.category's value set.
    static let categoryCodes = [
        "AU", "BG", "BLB", "CG", "CH", "CP", "CT", "CTH", "CUS", "EC", "EN", "GE", "HM", "ICU", "IMM", "LAB", "MB", "MCB", "MYC", "NMR", "NMS",
        "NRS", "OSL", "OT", "OTH", "OUS", "PF", "PHR", "PHY", "PT", "RAD", "RC", "RT", "RUS", "RX", "SP", "SR", "TX", "VR", "VUS", "XRC",
    ]

    /// The grant `resource` makes, or a 422 listing every problem found.
    static func grant(from resource: JSONValue) throws(Problem) -> Grant {
        var checker = ValidationChecker()
        _ = checker.checkResource(resource, as: "Consent", rules: ConsentElements.all)
        // Rules on top of a broken structure would only repeat its problems.
        try fail(checker)
        checkInvariants(resource, &checker)
        let grant = medLedgerGrant(resource, &checker)
        try fail(checker)
        guard let grant else { throw Problem.invalidResource([FHIRIssue(code: "invalid", diagnostics: "the consent grants nothing")]) }
        return grant
    }

    private static func fail(_ checker: ValidationChecker) throws(Problem) {
        guard !checker.issues.isEmpty else { return }
        throw Problem.invalidResource(checker.issues.map { FHIRIssue(code: "invalid", diagnostics: $0.message, expression: $0.expression) })
    }

    /// R4's cardinalities the element rules cannot say, and its invariants.
    private static func checkInvariants(_ resource: JSONValue, _ checker: inout ValidationChecker) {
        if resource["category"] == nil { checker.report("Consent.category", "category is required (one or more CodeableConcepts)") }
        if resource["policy"] == nil, resource["policyRule"] == nil {
            checker.report(
                "Consent", "ppc-1: a consent needs policy or policyRule (e.g. policyRule http://terminology.hl7.org/CodeSystem/v3-ActCode|OPTIN)")
        }
        if let extensions = resource["extension"], extensions.arrayValue == nil {
            checker.report("Consent.extension", "extension must be an array of extensions")
        }
        if resource["sourceAttachment"] != nil, resource["sourceReference"] != nil {
            checker.report("Consent.sourceReference", "source[x] takes one type: sourceAttachment or sourceReference, not both")
        }
    }

    /// MedLedger's rules; the grant when they hold (nil after reporting why not).
    private static func medLedgerGrant(_ resource: JSONValue, _ checker: inout ValidationChecker) -> Grant? {
        let codings = resource["scope"]?["coding"]?.arrayValue ?? []
        if !codings.contains(where: { $0["system"]?.stringValue == scopeSystem && $0["code"]?.stringValue == "patient-privacy" }) {
            checker.report("Consent.scope", "MedLedger stores privacy consents only: scope must have the coding \(scopeSystem)|patient-privacy")
        }
        let patient = typedReference(resource["patient"], ["Patient"])
        if patient == nil {
            checker.report("Consent.patient", "patient is required and must reference the patient who grants access, as Patient/{id}")
        }
        guard let provision = resource["provision"] else {
            checker.report("Consent.provision", "provision is required: it says whom the patient grants access to, and to what")
            return nil
        }
        if provision["type"]?.stringValue != "permit" {
            checker.report("Consent.provision.type", "provision.type must be permit: MedLedger consents grant access; deny rules are not supported")
        }
        if provision["provision"] != nil {
            checker.report("Consent.provision.provision", "nested provisions are not supported: one provision grants one actor access")
        }
        let actor = self.actor(provision, &checker)
        let actions = (provision["action"]?.arrayValue ?? []).flatMap { $0["coding"]?.arrayValue ?? [] }
        if !actions.contains(where: { $0["system"]?.stringValue == actionSystem && $0["code"]?.stringValue == "access" }) {
            checker.report(
                "Consent.provision.action", "provision.action must include \(actionSystem)|access: MedLedger consents grant access to reports")
        }
        let scope = self.scope(provision, &checker)
        let period = self.period(provision["period"])
        guard let patient, let actor, let scope, let status = resource["status"]?.stringValue, checker.issues.isEmpty else { return nil }
        return Grant(
            status: status, patient: patient, actor: actor, scope: scope.scope, category: scope.category, resource: scope.resource,
            periodStart: period.start, periodEnd: period.end)
    }

    private static func actor(_ provision: JSONValue, _ checker: inout ValidationChecker) -> String? {
        let actors = provision["actor"]?.arrayValue ?? []
        guard actors.count == 1 else {
            checker.report(
                "Consent.provision.actor", "provision.actor must name exactly one actor (a Practitioner or an Organization), not \(actors.count)")
            return nil
        }
        guard let actor = typedReference(actors[0]["reference"], ["Practitioner", "Organization"]) else {
            checker.report("Consent.provision.actor[0].reference", "the actor must be a Practitioner/{id} or an Organization/{id} (an EHR system)")
            return nil
        }
        return actor
    }

    /// Neither `data` nor `code`: all reports; `data`: one report; `code`: one category.
    private static func scope(_ provision: JSONValue, _ checker: inout ValidationChecker) -> (
        scope: Grant.Scope, category: String?, resource: String?
    )? {
        switch (provision["data"]?.arrayValue, provision["code"]?.arrayValue) {
        case (nil, nil):
            return (.all, nil, nil)
        case (let data?, nil):
            guard data.count == 1, data[0]["meaning"]?.stringValue == "instance",
                let report = typedReference(data[0]["reference"], ["DiagnosticReport"])
            else {
                checker.report(
                    "Consent.provision.data", "provision.data must be one item with meaning instance and a reference DiagnosticReport/{id}")
                return nil
            }
            return (.resource, nil, report)
        case (nil, let codes?):
            let categories = codes.count == 1 ? (codes[0]["coding"]?.arrayValue ?? []).filter { $0["system"]?.stringValue == categorySystem } : []
            guard categories.count == 1, let code = categories[0]["code"]?.stringValue else {
                checker.report(
                    "Consent.provision.code", "provision.code must be one CodeableConcept with one coding of \(categorySystem) (a report category)")
                return nil
            }
            guard categoryCodes.contains(code) else {
                checker.report(
                    "Consent.provision.code[0]", "unknown category \(code): use a code of \(categorySystem) (\(categoryCodes.joined(separator: " ")))"
                )
                return nil
            }
            return (.category, code, nil)
        default:
            checker.report(
                "Consent.provision",
                "provision.data and provision.code exclude each other: a consent grants one report or one category (or, with neither, all)")
            return nil
        }
    }

    /// The period's bounds in µs (the structural check made sure they parse and are in order).
    private static func period(_ period: JSONValue?) -> (start: Int64?, end: Int64?) {
        let start = period?["start"]?.stringValue.flatMap { FHIRDate.range(of: $0, kind: .dateTime) }
        let end = period?["end"]?.stringValue.flatMap { FHIRDate.range(of: $0, kind: .dateTime) }
        return (start.map { Micros.of($0.low) }, end.map { Micros.of($0.high) })
    }

    /// `Type/id` when the Reference's `reference` is a relative reference to one of `types`.
    private static func typedReference(_ element: JSONValue?, _ types: [String]) -> String? {
        element?["reference"]?.stringValue.flatMap { TypedReference.parse($0, types) }
    }
}
