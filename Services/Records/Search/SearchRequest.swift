import HTTPTypes
import Foundation
import MedLedgerCore

/// A parsed search: the filters (AND of ORs) and the result controls. Parameters records does
/// not know are dropped (lenient) or refused (`Prefer: handling=strict`), as the FHIR search
/// spec says; those it uses are echoed in the `self` link.
struct SearchRequest: Sendable {
    struct Filter: Sendable {
        var parameter: SearchParameter
        var modifier: String?
        var values: [String]
    }

    var type: ResourceType
    var filters: [Filter] = []
    var controls: SearchControls
    var summaryCount = false
    var includePatients = false

    /// The patients every match belongs to when `patient` filters pin them (nil: any patient).
    /// Consent grants of other patients cannot open a match, so they stay out of the query.
    func pinnedPatients(base: String) -> Set<String>? {
        var pinned: Set<String>?
        for filter in filters {
            guard case .patientColumn = filter.parameter.storage else { continue }
            let ids = Set(SearchCondition.patientIDs(filter, base: base))
            pinned = pinned.map { $0.intersection(ids) } ?? ids
        }
        return pinned
    }

    static let defaultCount = 20
    static let maximumCount = 1000

    init(type: ResourceType, fields: [(name: String, value: String)], strict: Bool) throws(Problem) {
        self.type = type
        controls = SearchControls(
            type: type.rawValue, defaultCount: Self.defaultCount, maximumCount: Self.maximumCount, sortKeys: SortKey.allowed(for: type).map(\.rawValue))
        for (key, value) in fields {
            if try controls.take(key, value: value) { continue }
            let (name, modifier) = SearchControls.split(key)
            switch name {
            case "_summary":
                guard value == "count" else {
                    if strict { throw Problem.badRequest("_summary=\(value) is not supported (only _summary=count)") }
                    continue
                }
                summaryCount = true
                controls.applied.append((key, value))
            case "_include":
                guard type == .diagnosticReport, value == "DiagnosticReport:patient" else {
                    if strict { throw Problem.badRequest("_include=\(value) is not supported (only DiagnosticReport:patient)") }
                    continue
                }
                includePatients = true
                controls.applied.append((key, value))
            default:
                guard let parameter = SearchParameter.named(name, for: type) else {
                    if strict { throw Problem.badRequest("\(type.rawValue) has no search parameter \(name) (Prefer: handling=strict)") }
                    continue
                }
                try Self.check(modifier: modifier, for: parameter)
                let values = value.split(separator: ",", omittingEmptySubsequences: true).map(String.init)
                // An empty value means the parameter was not given (FHIR search, "Handling errors").
                guard !values.isEmpty else { continue }
                for value in values { try SearchCondition.validate(value, parameter: parameter, modifier: modifier) }
                filters.append(Filter(parameter: parameter, modifier: modifier, values: values))
                controls.applied.append((key, value))
            }
        }
    }

    var count: Int { controls.count }
    var includeTotal: Bool { controls.includeTotal }
    var cursor: SearchCursor? { controls.cursor }
    var applied: [(name: String, value: String)] { controls.applied }
    var sort: SortKey { SortKey(rawValue: controls.sortKey) ?? .lastUpdated }

    static func check(modifier: String?, for parameter: SearchParameter) throws(Problem) {
        guard let modifier else { return }
        switch (parameter.kind, modifier) {
        case (.string, "exact"), (.string, "contains"): return
        default: throw Problem.badRequest("the modifier :\(modifier) is not supported on \(parameter.name)")
        }
    }
}
