import HTTPTypes
import Foundation
import MedLedgerCore

/// One search parameter's values as SQL on a `resources` row aliased `r`: comma-separated
/// values are ORed, the FHIR semantics of each kind (search.html) spelled out below.
enum SearchCondition {
    /// The date prefixes records supports.
    static let datePrefixes: Set<DateSearch.Prefix> = [.eq, .ne, .lt, .gt, .le, .ge]

    /// 400 for a value that cannot mean anything (a malformed date, an unknown prefix).
    static func validate(_ value: String, parameter: SearchParameter, modifier: String?) throws(Problem) {
        if parameter.kind == .date, dateValue(value) == nil {
            throw Problem.badRequest(
                "\(parameter.name)=\(value) is not a date search value: an optional prefix (eq ne lt gt le ge) and a date such as 2024, 2024-05, 2024-05-01 or 2024-05-01T10:00:00Z"
            )
        }
    }

    static func dateValue(_ value: String) -> (prefix: DateSearch.Prefix, range: FHIRDateRange)? {
        DateSearch.value(value, allowed: datePrefixes)
    }

    /// The patient ids a `patient` filter names (references to other types name none).
    static func patientIDs(_ filter: SearchRequest.Filter, base: String) -> [String] {
        filter.values.compactMap { referenceTarget($0, parameter: filter.parameter, base: base) }.compactMap { target -> String? in
            let parts = target.split(separator: "/", maxSplits: 1)
            return parts.count == 2 && parts[0] == "Patient" ? String(parts[1]) : nil
        }
    }

    static func sql(_ filter: SearchRequest.Filter, type: ResourceType, base: String, _ builder: inout SQLBuilder) -> String {
        let parameter = filter.parameter
        switch parameter.storage {
        case .idColumn:
            return "r.id = ANY(\(builder.bind(filter.values)))"
        case .patientColumn:
            let ids = patientIDs(filter, base: base)
            // One patient (the common case) as an equality, so the planner walks the patient's
            // sorted index and stops at the page; `= ANY` would fetch and sort all their rows.
            if ids.count == 1 { return "r.patient = \(builder.bind(ids[0]))" }
            return ids.isEmpty ? "FALSE" : "r.patient = ANY(\(builder.bind(ids)))"
        case .lastUpdatedColumn:
            // A version's lastUpdated has millisecond precision: it covers [t, t + 1 ms).
            let alternatives = filter.values.compactMap(dateValue).map { value in
                DateSearch.condition(value.prefix, value.range, low: "r.last_updated", high: "(r.last_updated + 1000)", &builder)
            }
            return "(" + alternatives.joined(separator: " OR ") + ")"
        case .index:
            let alternatives = filter.values.map { valueCondition($0, filter: filter, base: base, &builder) }
            return """
                EXISTS (SELECT 1 FROM search_index s WHERE s.type = '\(type.rawValue)' AND s.id = r.id \
                AND s.param = \(builder.bind(parameter.name)) AND (\(alternatives.joined(separator: " OR "))))
                """
        }
    }

    private static func valueCondition(_ value: String, filter: SearchRequest.Filter, base: String, _ builder: inout SQLBuilder) -> String {
        switch filter.parameter.kind {
        case .token:
            guard let bar = value.firstIndex(of: "|") else { return "s.code = \(builder.bind(value))" }
            let system = String(value[..<bar])
            let code = String(value[value.index(after: bar)...])
            switch (system.isEmpty, code.isEmpty) {
            case (true, true): return "FALSE"
            case (true, false): return "(s.system IS NULL AND s.code = \(builder.bind(code)))"
            case (false, true): return "s.system = \(builder.bind(system))"
            case (false, false): return "(s.system = \(builder.bind(system)) AND s.code = \(builder.bind(code)))"
            }
        case .string:
            switch filter.modifier {
            case "exact": return "s.raw = \(builder.bind(value))"
            case "contains": return "s.norm LIKE \(builder.bind("%" + likeEscaped(SearchIndexer.normalize(value)) + "%"))"
            default: return "s.norm LIKE \(builder.bind(likeEscaped(SearchIndexer.normalize(value)) + "%"))"
            }
        case .reference:
            guard let target = referenceTarget(value, parameter: filter.parameter, base: base) else {
                // A bare id for a parameter that may point at several types.
                return "s.ref LIKE \(builder.bind("%/" + likeEscaped(value)))"
            }
            return "s.ref = \(builder.bind(target))"
        case .date:
            guard let (prefix, range) = dateValue(value) else { return "FALSE" }
            return DateSearch.condition(prefix, range, low: "s.low", high: "s.high", &builder)
        }
    }

    /// `Type/id` for a reference search value (`Type/id`, our own absolute URL, or a bare id when
    /// the parameter has one target type); other absolute URLs stay as they are.
    static func referenceTarget(_ value: String, parameter: SearchParameter, base: String) -> String? {
        if let local = FHIRReference.local(value, base: base) { return "\(local.type)/\(local.id)" }
        if value.contains("://") { return value }
        if let target = parameter.targetType, FHIRReference.isValidID(value) { return "\(target.rawValue)/\(value)" }
        return nil
    }

    static func likeEscaped(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
