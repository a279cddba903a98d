import MedLedgerCore

/// Consent's elements in FHIR R4 (consent.html), for the structural check every write passes.
enum ConsentElements {
    static let statuses = ["draft", "proposed", "active", "rejected", "inactive", "entered-in-error"]

    static let policy: [ElementRule] = [.one("authority", .uri), .one("uri", .uri)]
    static let verification: [ElementRule] = [
        .one("verified", .boolean, required: true), .one("verifiedWith", .reference(targets: ["Patient", "RelatedPerson"])),
        .one("verificationDate", .dateTime),
    ]
    static let provisionActor: [ElementRule] = [
        .one("role", .codeableConcept, required: true), .one("reference", .reference(targets: nil), required: true),
    ]
    static let provisionData: [ElementRule] = [
        .one("meaning", .codeIn(["instance", "related", "dependents", "authoredby"]), required: true),
        .one("reference", .reference(targets: nil), required: true),
    ]
    /// `provision.provision` repeats the provision itself; MedLedger refuses nesting, so its
    /// contents are not walked.
    static let provision: [ElementRule] = [
        .one("type", .codeIn(["deny", "permit"])), .one("period", .period), .many("actor", .backbone("actor", provisionActor)),
        .many("action", .codeableConcept), .many("securityLabel", .coding), .many("purpose", .coding), .many("class", .coding),
        .many("code", .codeableConcept), .one("dataPeriod", .period), .many("data", .backbone("data", provisionData)),
    ]

    static let all: [ElementRule] =
        DataTypeRules.domainResource + [
            .many("identifier", .identifier), .one("status", .codeIn(statuses), required: true), .one("scope", .codeableConcept, required: true),
            .many("category", .codeableConcept), .one("patient", .reference(targets: ["Patient"])), .one("dateTime", .dateTime),
            .many("performer", .reference(targets: nil)), .many("organization", .reference(targets: ["Organization"])),
            .one("sourceAttachment", .attachment), .one("sourceReference", .reference(targets: nil)), .many("policy", .backbone("policy", policy)),
            .one("policyRule", .codeableConcept), .many("verification", .backbone("verification", verification)),
            .one("provision", .backbone("provision", provision)),
        ]
}
