import Foundation
import MedLedgerCore

/// What the FHIR search parameters of AuditEvent match, taken from an event at ingest and stored
/// beside it. Tokens are kept as both `system|code` and `code`, so `type=110114` and
/// `type=http://…|110114` find the same rows. References are kept as `Type/id` (and also as
/// `Type/id/_history/n` when versioned); identifiers as `system|value`, which `:identifier`
/// searches (a `|` never occurs in a reference, so the two cannot be confused).
struct AuditEventIndex: Sendable, Equatable {
    var recorded: Int64
    var action: String?
    var outcome: String?
    var types: [String]
    var subtypes: [String]
    /// `agent.who` (the `agent` parameter).
    var agents: [String]
    /// `entity.what` (the `entity` parameter).
    var entities: [String]
    /// `Patient/x` among the agents and entities (R4's `patient` parameter: `agent.who` or
    /// `entity.what` that is a Patient).
    var patients: [String]

    /// Nil when `recorded` is not an instant: every stored event must be placeable in time.
    init?(_ event: JSONValue) {
        guard let text = event["recorded"]?.stringValue, let range = FHIRDate.range(of: text, kind: .instant) else { return nil }
        recorded = Micros.of(range.low)
        action = event["action"]?.stringValue
        outcome = event["outcome"]?.stringValue
        types = Self.tokens([event["type"]].compactMap { $0 })
        subtypes = Self.tokens(event["subtype"]?.arrayValue ?? [])
        agents = Self.references((event["agent"]?.arrayValue ?? []).compactMap { $0["who"] })
        entities = Self.references((event["entity"]?.arrayValue ?? []).compactMap { $0["what"] })
        var patients: [String] = []
        for reference in agents + entities where reference.hasPrefix("Patient/") && !reference.contains("/_history/") {
            if !patients.contains(reference) { patients.append(reference) }
        }
        self.patients = patients
    }

    private static func tokens(_ codings: [JSONValue]) -> [String] {
        var tokens: [String] = []
        for coding in codings {
            guard let code = coding["code"]?.stringValue else { continue }
            for token in [(coding["system"]?.stringValue ?? "") + "|" + code, code] where !tokens.contains(token) { tokens.append(token) }
        }
        return tokens
    }

    private static func references(_ elements: [JSONValue]) -> [String] {
        var values: [String] = []
        func add(_ value: String) { if !values.contains(value) { values.append(value) } }
        for element in elements {
            if let reference = element["reference"]?.stringValue {
                if let local = FHIRReference.local(reference, base: "") {
                    add("\(local.type)/\(local.id)")
                    if reference.contains("/_history/") { add(reference) }
                } else {
                    add(reference)
                }
            }
            if let identifier = element["identifier"], let value = identifier["value"]?.stringValue {
                add((identifier["system"]?.stringValue ?? "") + "|" + value)
            }
        }
        return values
    }
}
