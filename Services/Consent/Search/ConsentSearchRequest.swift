import MedLedgerCore

/// A parsed Consent search: filters (each one an OR of its comma-separated values, all ANDed)
/// and the result controls. Unknown parameters are ignored and reported back (lenient) or
/// refused (`Prefer: handling=strict`), as the FHIR search spec says; bad values are a 400.
struct ConsentSearchRequest: Sendable {
    enum Filter: Sendable {
        case id([String])
        case patient([String])
        case actor([String])
        case status([String])
        case period([(prefix: DateSearch.Prefix, range: FHIRDateRange)])
        case lastUpdated([(prefix: DateSearch.Prefix, range: FHIRDateRange)])
    }

    /// The search parameters and their FHIR types (also what the CapabilityStatement lists).
    static let parameters: [(name: String, type: String)] = [
        ("_id", "token"), ("_lastUpdated", "date"), ("patient", "reference"), ("actor", "reference"), ("status", "token"), ("period", "date"),
    ]
    static let defaultCount = 20
    static let maximumCount = 100
    static let statusSystem = "http://hl7.org/fhir/consent-state-codes"

    var filters: [Filter] = []
    var controls = SearchControls(type: "Consent", defaultCount: defaultCount, maximumCount: maximumCount, sortKeys: ["_lastUpdated"])
    /// Parameters dropped under lenient handling, to tell the client.
    var ignored: [String] = []

    /// `base`: our FHIR base, under which an absolute reference is a local one.
    init(fields: [(name: String, value: String)], strict: Bool, base: String) throws(Problem) {
        let (parameters, ignored) = try controls.parameters(fields, known: Self.parameters.map(\.name), strict: strict)
        self.ignored = ignored
        for parameter in parameters {
            if let modifier = parameter.modifier { throw Problem.badRequest("the modifier :\(modifier) is not supported on \(parameter.name)") }
            filters.append(try Self.filter(parameter.name, parameter.values, base: base))
        }
    }

    private static func filter(_ name: String, _ values: [String], base: String) throws(Problem) -> Filter {
        switch name {
        case "_id": return .id(values)
        case "patient": return .patient(try values.map { value throws(Problem) in try reference(value, name, types: ["Patient"], base: base) })
        case "actor":
            return .actor(
                try values.map { value throws(Problem) in try reference(value, name, types: ["Practitioner", "Organization"], base: base) })
        case "status": return .status(values.compactMap { SearchControls.code($0, system: statusSystem) })
        case "period": return .period(try values.map { value throws(Problem) in try DateSearch.parse(value, parameter: name) })
        default: return .lastUpdated(try values.map { value throws(Problem) in try DateSearch.parse(value, parameter: name) })
        }
    }

    /// `Type/id` from `Type/id`, an absolute URL under our base, or (with a single type) a bare id.
    private static func reference(_ value: String, _ name: String, types: [String], base: String) throws(Problem) -> String {
        let text = value.hasPrefix(base + "/") ? String(value.dropFirst(base.count + 1)) : value
        if let reference = TypedReference.parse(text, types) { return reference }
        if types.count == 1, FHIRReference.isValidID(text) { return "\(types[0])/\(text)" }
        throw Problem.badRequest("\(name)=\(value) is not a reference to \(TypedReference.shapes(types))")
    }

    /// The filters as SQL conditions on a `consents` row aliased `c`.
    func conditions(_ builder: inout SQLBuilder) -> [String] {
        filters.map { filter in
            switch filter {
            case .id(let ids): "c.id = ANY(\(builder.bind(ids)))"
            case .patient(let patients): "c.patient = ANY(\(builder.bind(patients)))"
            case .actor(let actors): "c.actor = ANY(\(builder.bind(actors)))"
            case .status(let statuses): "c.status = ANY(\(builder.bind(statuses)))"
            case .period(let dates):
                // Open ends are ±infinity (FHIR search on a Period).
                Self.any(
                    dates, low: "coalesce(c.period_start, \(builder.bind(Micros.minimum)))",
                    high: "coalesce(c.period_end, \(builder.bind(Micros.maximum)))",
                    &builder)
            case .lastUpdated(let dates):
                // A version's lastUpdated has millisecond precision: it covers [t, t + 1 ms).
                Self.any(dates, low: "c.last_updated", high: "(c.last_updated + 1000)", &builder)
            }
        }
    }

    private static func any(_ dates: [(prefix: DateSearch.Prefix, range: FHIRDateRange)], low: String, high: String, _ builder: inout SQLBuilder)
        -> String
    {
        "(" + dates.map { DateSearch.condition($0.prefix, $0.range, low: low, high: high, &builder) }.joined(separator: " OR ") + ")"
    }
}
