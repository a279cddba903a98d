import MedLedgerCore

extension AccessRule {
    /// The rule as a condition on a row of `resources` or `resource_versions` aliased `alias`.
    func condition(type: ResourceType, alias a: String, _ builder: inout SQLBuilder) -> String {
        switch self {
        case .all:
            return "TRUE"
        case .none:
            return "FALSE"
        case .authoredBy(let author):
            return "\(a).author = \(builder.bind(author))"
        case .granted(let grants):
            return ConsentCondition(grants: grants).sql(type: type, alias: a, &builder)
        case .anyOf(let rules):
            return "(" + rules.map { $0.condition(type: type, alias: a, &builder) }.joined(separator: " OR ") + ")"
        case .assignedTo(let practitioner):
            // Correlated, so each row checks its own patient: an `IN (…)` list is the doctor's whole
            // panel, built and probed for every search.
            return """
                EXISTS (SELECT 1 FROM search_index g WHERE g.type = 'Patient' AND g.id = \(a).patient \
                AND g.param = 'general-practitioner' AND g.ref = \(builder.bind(practitioner)))
                """
        case .ownedBy(let patient, let releasedOnly):
            let me = builder.bind(patient)
            guard releasedOnly else { return "\(a).patient = \(me)" }
            let released = builder.bind(AccessRule.releasedStatuses)
            switch type {
            case .binary:
                return """
                    \(a).patient = \(me) AND EXISTS (SELECT 1 FROM search_index f JOIN resources d ON d.type = f.type AND d.id = f.id \
                    WHERE f.type = 'DiagnosticReport' AND f.param = 'presented-form' AND f.ref = 'Binary/' || \(a).id \
                    AND NOT d.deleted AND d.patient = \(me) AND d.status = ANY(\(released)))
                    """
            default:
                return "\(a).patient = \(me) AND \(a).status = ANY(\(released))"
            }
        }
    }
}
