/// The search parameters records supports, per type (FHIR R4 search parameter registry).
enum SearchKind: Sendable {
    case token
    case string
    case date
    case reference
}

struct SearchParameter: Sendable {
    var name: String
    var kind: SearchKind
    /// Where the values live: a row set of `search_index`, or a column of `resources`.
    var storage: Storage
    /// For references: the type a bare id (`x` rather than `Patient/x`) stands for.
    var targetType: ResourceType?

    enum Storage: Sendable {
        case index
        case idColumn
        case lastUpdatedColumn
        case patientColumn
    }

    static func index(_ name: String, _ kind: SearchKind, target: ResourceType? = nil) -> SearchParameter {
        SearchParameter(name: name, kind: kind, storage: .index, targetType: target)
    }

    static let common: [SearchParameter] = [
        SearchParameter(name: "_id", kind: .token, storage: .idColumn),
        SearchParameter(name: "_lastUpdated", kind: .date, storage: .lastUpdatedColumn),
    ]

    static func all(for type: ResourceType) -> [SearchParameter] {
        switch type {
        case .diagnosticReport:
            common + [
                SearchParameter(name: "patient", kind: .reference, storage: .patientColumn, targetType: .patient),
                .index("subject", .reference, target: .patient),
                .index("code", .token), .index("category", .token), .index("status", .token), .index("identifier", .token),
                .index("date", .date), .index("issued", .date),
                .index("performer", .reference), .index("based-on", .reference),
            ]
        case .patient:
            common + [
                .index("name", .string), .index("family", .string), .index("given", .string), .index("identifier", .token),
                .index("birthdate", .date), .index("general-practitioner", .reference, target: .practitioner),
            ]
        case .practitioner:
            common + [.index("name", .string), .index("identifier", .token)]
        case .binary:
            common
        }
    }

    static func named(_ name: String, for type: ResourceType) -> SearchParameter? {
        all(for: type).first { $0.name == name }
    }
}

/// `_sort` keys and the `resources` column behind each.
enum SortKey: String, Sendable {
    case lastUpdated = "_lastUpdated"
    case date
    case issued

    var column: String {
        switch self {
        case .lastUpdated: "last_updated"
        case .date: "sort_date"
        case .issued: "sort_issued"
        }
    }

    static func allowed(for type: ResourceType) -> [SortKey] {
        type == .diagnosticReport ? [.lastUpdated, .date, .issued] : [.lastUpdated]
    }
}
