import MedLedgerCore

/// A parsed AuditEvent search: filters (each an OR of its comma-separated values, all ANDed) and
/// the result controls. Values are turned into what `AuditEventIndex` stored, so each filter is
/// one array or column comparison. Unknown parameters are ignored and reported back (lenient)
/// or refused (`Prefer: handling=strict`), as in consent and records; bad values are a 400.
struct AuditSearchRequest: Sendable {
    enum Filter: Sendable {
        /// Chain sequence numbers (an id that is not one matches nothing).
        case id([Int64])
        /// `Patient/x` values.
        case patient([String])
        /// Stored forms: `Type/id`, `Type/id/_history/n`, an absolute URL, or `system|value`.
        case agent([String])
        case entity([String])
        /// Stored tokens: `system|code`, `|code` or `code`.
        case type([String])
        case subtype([String])
        case action([String])
        case outcome([String])
        case date([(prefix: DateSearch.Prefix, range: FHIRDateRange)])
    }

    /// The search parameters and their FHIR types (also what the CapabilityStatement lists).
    static let parameters: [(name: String, type: String)] = [
        ("_id", "token"), ("patient", "reference"), ("agent", "reference"), ("entity", "reference"), ("type", "token"), ("subtype", "token"),
        ("action", "token"), ("outcome", "token"), ("date", "date"),
    ]
    static let defaultCount = 20
    static let maximumCount = 1000
    static let actionSystem = "http://hl7.org/fhir/audit-event-action"
    static let outcomeSystem = "http://hl7.org/fhir/audit-event-outcome"

    var filters: [Filter] = []
    var controls = SearchControls(
        type: AuditAccess.resourceType, defaultCount: defaultCount, maximumCount: maximumCount, sortKeys: ["date"], numericIDs: true)
    /// Parameters dropped under lenient handling, to tell the client.
    var ignored: [String] = []

    /// `base`: our FHIR base, under which an absolute reference is a local one.
    init(fields: [(name: String, value: String)], strict: Bool, base: String) throws(Problem) {
        let (parameters, ignored) = try controls.parameters(fields, known: Self.parameters.map(\.name), strict: strict)
        self.ignored = ignored
        for parameter in parameters {
            try Self.check(parameter.modifier, on: parameter.name)
            filters.append(try Self.filter(parameter.name, modifier: parameter.modifier, parameter.values, base: base))
        }
    }

    /// The patient every match is about when one `patient` value pins it (nil: any or several).
    var pinnedPatient: String? {
        for filter in filters {
            if case .patient(let patients) = filter, patients.count == 1 { return patients[0] }
        }
        return nil
    }

    /// Whether the filters need the events' own columns, beyond what `driver`'s index rows
    /// hold (their date): a count without them reads the patient's index alone.
    func filtersEvents(driver: String?) -> Bool {
        filters.contains { Self.filtersEvents($0, driver: driver) }
    }

    /// False for a date (the index rows hold it) and for the `patient` filter of just `driver`
    /// (the rows read are that patient's).
    private static func filtersEvents(_ filter: Filter, driver: String?) -> Bool {
        switch filter {
        case .date: false
        case .patient(let patients): driver.map { patients != [$0] } ?? true
        default: true
        }
    }

    /// `agent` and `entity` take `:identifier` and a resource type (`agent:Practitioner=x`);
    /// nothing else takes a modifier.
    private static func check(_ modifier: String?, on name: String) throws(Problem) {
        guard let modifier else { return }
        if name == "agent" || name == "entity", modifier == "identifier" || PrimitiveSyntax.relativeReference("\(modifier)/x") != nil { return }
        throw Problem.badRequest("the modifier :\(modifier) is not supported on \(name)")
    }

    private static func filter(_ name: String, modifier: String?, _ values: [String], base: String) throws(Problem) -> Filter {
        switch name {
        case "_id": return .id(values.compactMap(seq))
        case "patient": return .patient(try values.map { value throws(Problem) in try patient(value, base: base) })
        case "agent": return .agent(try values.map { value throws(Problem) in try reference(value, name, modifier: modifier, base: base) })
        case "entity": return .entity(try values.map { value throws(Problem) in try reference(value, name, modifier: modifier, base: base) })
        case "type": return .type(try values.map { value throws(Problem) in try token(value, name) })
        case "subtype": return .subtype(try values.map { value throws(Problem) in try token(value, name) })
        case "action": return .action(values.compactMap { SearchControls.code($0, system: actionSystem) })
        case "outcome": return .outcome(values.compactMap { SearchControls.code($0, system: outcomeSystem) })
        default: return .date(try values.map { value throws(Problem) in try DateSearch.parse(value, parameter: name) })
        }
    }

    /// The chain position an AuditEvent id names: its decimal digits exactly (`012` and `+12` are
    /// no event's id), nil for anything else.
    static func seq(_ id: String) -> Int64? {
        guard let seq = Int64(id), seq > 0, String(seq) == id else { return nil }
        return seq
    }

    /// `Patient/x` from `Patient/x`, `x`, or an absolute URL under our base.
    private static func patient(_ value: String, base: String) throws(Problem) -> String {
        let text = local(value, base: base)
        if let reference = PrimitiveSyntax.relativeReference(text), reference.type == "Patient", reference.version == nil { return text }
        if FHIRReference.isValidID(text) { return "Patient/\(text)" }
        throw Problem.badRequest("patient=\(value) is not a reference to Patient/{id}")
    }

    /// A reference as the index stores it: `Type/id` (optionally versioned; the type may come
    /// from a `:Type` modifier), an absolute URL of another server, or with `:identifier` an
    /// identifier as `system|value`.
    private static func reference(_ value: String, _ name: String, modifier: String?, base: String) throws(Problem) -> String {
        if modifier == "identifier" {
            guard let bar = value.firstIndex(of: "|"), value.index(after: bar) < value.endIndex else {
                throw Problem.badRequest("\(name):identifier=\(value) must be system|value (|value for an identifier without a system)")
            }
            return value
        }
        let text = modifier.map { "\($0)/\(value)" } ?? local(value, base: base)
        if PrimitiveSyntax.relativeReference(text) != nil { return text }
        if modifier == nil, text.contains("://"), PrimitiveSyntax.isReference(text) { return text }
        throw Problem.badRequest("\(name)=\(value) is not a reference: use Type/id, Type/id/_history/n or an absolute URL")
    }

    private static func local(_ value: String, base: String) -> String {
        value.hasPrefix(base + "/") ? String(value.dropFirst(base.count + 1)) : value
    }

    /// A token as stored: `code`, `|code` (no system) or `system|code`.
    private static func token(_ value: String, _ name: String) throws(Problem) -> String {
        guard !value.hasSuffix("|") else { throw Problem.badRequest("\(name)=\(value): a system without a code is not supported, give system|code") }
        return value
    }

    /// The filters as SQL conditions on an `audit_events` row aliased `e`; `recorded` is the
    /// column to compare dates with (the index row's when a patient drives the query), and a
    /// `patient` filter of just `driver` is left to the caller, who reads that patient's rows.
    func conditions(recorded: String, driver: String?, _ builder: inout SQLBuilder) -> [String] {
        filters.compactMap { filter in
            switch filter {
            case .id(let seqs): "e.seq = ANY(\(builder.bind(seqs)))"
            case .patient where !Self.filtersEvents(filter, driver: driver): nil
            case .patient(let patients):
                """
                EXISTS (SELECT 1 FROM audit_patient_events p WHERE p.patient = ANY(\(builder.bind(patients))) \
                AND p.recorded = e.recorded AND p.seq = e.seq)
                """
            // `&&` (overlap) on the GIN-indexed arrays: any of the values.
            case .agent(let values): "e.agents && \(builder.bind(values))"
            case .entity(let values): "e.entities && \(builder.bind(values))"
            case .type(let values): "e.types && \(builder.bind(values))"
            case .subtype(let values): "e.subtypes && \(builder.bind(values))"
            case .action(let codes): "e.action = ANY(\(builder.bind(codes)))"
            case .outcome(let codes): "e.outcome = ANY(\(builder.bind(codes)))"
            case .date(let dates):
                "(" + dates.map { DateSearch.condition($0.prefix, $0.range, instant: recorded, &builder) }.joined(separator: " OR ") + ")"
            }
        }
    }
}
