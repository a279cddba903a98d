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
    var count = 20
    var sort = SortKey.lastUpdated
    var descending = true
    var includeTotal = true
    var summaryCount = false
    var includePatients = false
    var cursor: SearchCursor?
    /// The parameters applied, for the `self`/`next`/`previous` links (without `_cursor`).
    var applied: [(name: String, value: String)] = []

    static let defaultCount = 20
    static let maximumCount = 1000
    /// Result parameters that change nothing here (formats are negotiated elsewhere).
    static let ignoredControls: Set<String> = ["_format", "_pretty"]

    init(type: ResourceType, fields: [(name: String, value: String)], strict: Bool) throws(Problem) {
        self.type = type
        for (key, value) in fields {
            let (name, modifier) = Self.split(key)
            if Self.ignoredControls.contains(name) { continue }
            switch name {
            case "_count":
                guard modifier == nil, let number = Int(value), number >= 0 else { throw Problem.badRequest("_count must be a whole number ≥ 0, got \"\(value)\"") }
                count = min(number, Self.maximumCount)
                applied.append((key, String(count)))
            case "_sort":
                try parseSort(value)
                applied.append((key, value))
            case "_total":
                guard ["none", "estimate", "accurate"].contains(value) else { throw Problem.badRequest("_total must be none, estimate or accurate") }
                includeTotal = value != "none"
                applied.append((key, value))
            case "_summary":
                guard value == "count" else {
                    if strict { throw Problem.badRequest("_summary=\(value) is not supported (only _summary=count)") }
                    continue
                }
                summaryCount = true
                applied.append((key, value))
            case "_include":
                guard type == .diagnosticReport, value == "DiagnosticReport:patient" else {
                    if strict { throw Problem.badRequest("_include=\(value) is not supported (only DiagnosticReport:patient)") }
                    continue
                }
                includePatients = true
                applied.append((key, value))
            case "_cursor":
                guard let cursor = SearchCursor(value) else { throw Problem.badRequest("_cursor is not one this server issued") }
                self.cursor = cursor
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
                applied.append((key, value))
            }
        }
    }

    private mutating func parseSort(_ value: String) throws(Problem) {
        let keys = value.split(separator: ",")
        guard keys.count == 1, let first = keys.first else {
            throw Problem.badRequest("_sort takes one key here: \(SortKey.allowed(for: type).map(\.rawValue).joined(separator: ", ")) (prefix - for descending)")
        }
        let descending = first.hasPrefix("-")
        guard let key = SortKey(rawValue: String(descending ? first.dropFirst() : first)), SortKey.allowed(for: type).contains(key) else {
            throw Problem.badRequest("_sort=\(value) is not supported for \(type.rawValue): use \(SortKey.allowed(for: type).map(\.rawValue).joined(separator: ", "))")
        }
        sort = key
        self.descending = descending
    }

    static func split(_ key: String) -> (name: String, modifier: String?) {
        guard let colon = key.firstIndex(of: ":") else { return (key, nil) }
        return (String(key[..<colon]), String(key[key.index(after: colon)...]))
    }

    static func check(modifier: String?, for parameter: SearchParameter) throws(Problem) {
        guard let modifier else { return }
        switch (parameter.kind, modifier) {
        case (.string, "exact"), (.string, "contains"): return
        default: throw Problem.badRequest("the modifier :\(modifier) is not supported on \(parameter.name)")
        }
    }
}

/// Where a page starts: after (next) or before (previous) a row, by its sort value and id.
struct SearchCursor: Sendable, Equatable {
    var after: Bool
    var sortValue: Int64
    var id: String

    init(after: Bool, sortValue: Int64, id: String) {
        self.after = after
        self.sortValue = sortValue
        self.id = id
    }

    init?(_ text: String) {
        guard let bytes = Base64.decodeLenient(text), let decoded = String(validating: bytes, as: UTF8.self) else { return nil }
        let parts = decoded.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "a" || parts[0] == "b", let value = Int64(parts[1]), FHIRReference.isValidID(parts[2]) else { return nil }
        self.init(after: parts[0] == "a", sortValue: value, id: String(parts[2]))
    }

    var text: String { Array("\(after ? "a" : "b")|\(sortValue)|\(id)".utf8).base64URLString }
}
