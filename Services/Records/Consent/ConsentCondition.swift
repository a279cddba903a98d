import MedLedgerCore

/// Grants as a condition on a row of `resources` or `resource_versions` (alias `a`), so that
/// searches apply consent in SQL like every other access rule.
///
/// A consent opens a patient's released reports (those the patient may read themselves: a
/// patient cannot grant more than they see): all of them, a category (the current version's
/// v2-0074 `category` codings), or one report, which must also be that patient's. Break-glass
/// opens all of the patient's reports. Any grant opens the Patient resource, and a report's
/// opening extends to the Binaries it presents.
struct ConsentCondition {
    var breakGlassPatients: [String] = []
    var allReportsPatients: [String] = []
    /// `patient|category` and `patient|report id` pairs.
    var categoryPairs: [String] = []
    var reportPairs: [String] = []

    static let categorySystem = "http://terminology.hl7.org/CodeSystem/v2-0074"

    init(grants: [ConsentGrant]) {
        for grant in grants {
            if grant.isBreakGlass {
                breakGlassPatients.append(grant.patient)
                continue
            }
            switch grant.scope {
            case .all: allReportsPatients.append(grant.patient)
            case .category(let code): categoryPairs.append(grant.patient + "|" + code)
            case .report(let id): reportPairs.append(grant.patient + "|" + id)
            }
        }
    }

    func sql(type: ResourceType, alias a: String, _ builder: inout SQLBuilder) -> String {
        switch type {
        case .practitioner:
            return "FALSE"
        case .patient:
            let everyone = breakGlassPatients + allReportsPatients + (categoryPairs + reportPairs).map { String($0.prefix { $0 != "|" }) }
            return "\(a).patient = ANY(\(builder.bind(Array(Set(everyone)))))"
        case .diagnosticReport:
            var parts: [String] = []
            if !breakGlassPatients.isEmpty { parts.append("\(a).patient = ANY(\(builder.bind(breakGlassPatients)))") }
            if let released = releasedReports(alias: a, &builder) { parts.append(released) }
            return parts.isEmpty ? "FALSE" : "(" + parts.joined(separator: " OR ") + ")"
        case .binary:
            var parts: [String] = []
            if !breakGlassPatients.isEmpty { parts.append("\(a).patient = ANY(\(builder.bind(breakGlassPatients)))") }
            if let released = releasedReports(alias: "d", &builder) {
                parts.append(
                    """
                    EXISTS (SELECT 1 FROM search_index f JOIN resources d ON d.type = f.type AND d.id = f.id \
                    WHERE f.type = 'DiagnosticReport' AND f.param = 'presented-form' AND f.ref = 'Binary/' || \(a).id \
                    AND NOT d.deleted AND d.patient = \(a).patient AND \(released))
                    """)
            }
            return parts.isEmpty ? "FALSE" : "(" + parts.joined(separator: " OR ") + ")"
        }
    }

    /// The consented (released) reports among rows aliased `a`; nil when no consent opens any.
    private func releasedReports(alias a: String, _ builder: inout SQLBuilder) -> String? {
        var opened: [String] = []
        if !allReportsPatients.isEmpty { opened.append("\(a).patient = ANY(\(builder.bind(allReportsPatients)))") }
        if !reportPairs.isEmpty { opened.append("(\(a).patient || '|' || \(a).id) = ANY(\(builder.bind(reportPairs)))") }
        if !categoryPairs.isEmpty {
            opened.append(
                """
                EXISTS (SELECT 1 FROM search_index c WHERE c.type = 'DiagnosticReport' AND c.id = \(a).id AND c.param = 'category' \
                AND c.system = \(builder.bind(Self.categorySystem)) AND (\(a).patient || '|' || c.code) = ANY(\(builder.bind(categoryPairs))))
                """)
        }
        guard !opened.isEmpty else { return nil }
        return "(\(a).status = ANY(\(builder.bind(AccessRule.releasedStatuses))) AND (\(opened.joined(separator: " OR "))))"
    }
}
