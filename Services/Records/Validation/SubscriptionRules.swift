import MedLedgerCore

/// Structural R4 checks of a Subscription (the same JSON rules as every stored resource: no
/// nulls or empty values, known elements' types), before `SubscriptionSpec` checks what
/// records can deliver.
enum SubscriptionRules {
    static func validate(_ resource: JSONValue) throws(Problem) {
        var checker = ValidationChecker()
        _ = checker.checkResource(resource, as: "Subscription", rules: rules)
        guard checker.issues.isEmpty else {
            throw Problem.invalidResource(checker.issues.map { FHIRIssue(code: "invalid", diagnostics: $0.message, expression: $0.expression) })
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
        .one("type", .codeIn(["rest-hook", "websocket", "email", "sms", "message"]), required: true), .one("endpoint", .uri),
        .one("payload", .code), .many("header", .string),
    ]
}
