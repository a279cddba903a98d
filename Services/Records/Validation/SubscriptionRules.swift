import MedLedgerCore

/// Structural R4 checks of a Subscription (the same JSON rules as every stored resource: no
/// nulls or empty values, known elements' types), before `SubscriptionSpec` checks what
/// records can deliver.
enum SubscriptionRules {
    static func validate(_ resource: JSONValue) throws(Problem) {
        var checker = ValidationChecker()
        _ = checker.checkResource(resource, as: "Subscription", rules: rules)
        // Unlike the clinical resources, records owns this one: it keeps no elements R4's
        // Subscription does not define (what it does not know, it would serve back as invalid FHIR).
        unknownElements(resource, known: rules, at: "Subscription", &checker)
        if let channel = resource["channel"] { unknownElements(channel, known: self.channel, at: "Subscription.channel", &checker) }
        guard checker.issues.isEmpty else {
            throw Problem.invalidResource(checker.issues.map { FHIRIssue(code: "invalid", diagnostics: $0.message, expression: $0.expression) })
        }
    }

    /// Every element besides the known ones, extensions and primitives' `_name` siblings.
    private static func unknownElements(_ value: JSONValue, known: [ElementRule], at path: String, _ checker: inout ValidationChecker) {
        guard case .object(let members) = value else { return }
        let names = Set(known.map(\.name)).union(["resourceType", "extension", "modifierExtension"])
        for member in members where !names.contains(member.key) && !(member.key.hasPrefix("_") && names.contains(String(member.key.dropFirst()))) {
            checker.report("\(path).\(member.key)", "\(member.key) is not an element of an R4 Subscription")
        }
    }

    static let statuses = ["requested", "active", "error", "off"]

    private static let rules: [ElementRule] =
        DataTypeRules.domainResource + [
            .one("status", .codeIn(statuses), required: true), .many("contact", .contactPoint), .one("end", .instant),
            .one("reason", .string, required: true), .one("criteria", .string, required: true), .one("error", .string),
            .one("channel", .backbone("Subscription.channel", channel), required: true),
        ]

    private static let channel: [ElementRule] = [
        .one("id", .string), .one("type", .codeIn(["rest-hook", "websocket", "email", "sms", "message"]), required: true), .one("endpoint", .uri),
        .one("payload", .code), .many("header", .string),
    ]
}
