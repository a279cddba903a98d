import Foundation
import MedLedgerCore

/// One value of a search parameter, as stored in `search_index`.
struct IndexRow: Sendable, Equatable {
    var param: String
    var system: String? = nil
    var code: String? = nil
    var ref: String? = nil
    var norm: String? = nil
    var raw: String? = nil
    var low: Int64? = nil
    var high: Int64? = nil
}

/// The plaintext facts about a version that access control, sorting and search need; derived
/// from the resource on every write (and, for `$verify`, re-derivable from the stored body).
struct IndexedFacts: Sendable, Equatable {
    var patient: String?
    var status: String?
    var sortDate: Int64
    var sortIssued: Int64
    var rows: [IndexRow]
}

enum SearchIndexer {
    static let diagnosticReportStatusSystem = "http://hl7.org/fhir/diagnostic-report-status"

    static func facts(_ resource: JSONValue, type: ResourceType, id: String, base: String) -> IndexedFacts {
        var rows: [IndexRow] = []
        var facts = IndexedFacts(patient: nil, status: nil, sortDate: Micros.minimum, sortIssued: Micros.minimum, rows: [])
        switch type {
        case .patient:
            facts.patient = id
            for name in resource["name"]?.arrayValue ?? [] {
                let family = name["family"]?.stringValue.map { [$0] } ?? []
                let given = strings(name["given"])
                for part in family + given + strings(name["prefix"]) + strings(name["suffix"]) + (name["text"]?.stringValue.map { [$0] } ?? []) {
                    rows.append(string("name", part))
                }
                rows += family.map { string("family", $0) } + given.map { string("given", $0) }
            }
            rows += identifiers(resource["identifier"])
            if let birthDate = resource["birthDate"]?.stringValue, let range = FHIRDate.range(of: birthDate, kind: .date) {
                rows.append(date("birthdate", range))
            }
            rows += references("general-practitioner", resource["generalPractitioner"], base: base)
        case .practitioner:
            for name in resource["name"]?.arrayValue ?? [] {
                let parts = (name["family"]?.stringValue.map { [$0] } ?? []) + strings(name["given"]) + strings(name["prefix"])
                    + strings(name["suffix"]) + (name["text"]?.stringValue.map { [$0] } ?? [])
                rows += parts.map { string("name", $0) }
            }
            rows += identifiers(resource["identifier"])
        case .diagnosticReport:
            facts.patient = FHIRReference.localID(of: resource["subject"], type: ResourceType.patient.rawValue, base: base)
            facts.status = resource["status"]?.stringValue
            if let status = facts.status { rows.append(IndexRow(param: "status", system: diagnosticReportStatusSystem, code: status)) }
            rows += codings("code", resource["code"])
            for category in resource["category"]?.arrayValue ?? [] { rows += codings("category", category) }
            rows += identifiers(resource["identifier"])
            rows += references("subject", resource["subject"].map { .array([$0]) }, base: base)
            rows += references("performer", resource["performer"], base: base)
            rows += references("based-on", resource["basedOn"], base: base)
            for form in resource["presentedForm"]?.arrayValue ?? [] {
                if let url = form["url"]?.stringValue, let local = FHIRReference.local(url, base: base), local.type == "Binary" {
                    rows.append(IndexRow(param: "presented-form", ref: "Binary/\(local.id)"))
                }
            }
            if let effective = effectiveRange(resource) {
                rows.append(date("date", effective))
                facts.sortDate = Micros.of(effective.low)
            }
            if let issued = resource["issued"]?.stringValue, let range = FHIRDate.range(of: issued, kind: .instant) {
                rows.append(date("issued", range))
                facts.sortIssued = Micros.of(range.low)
            }
        case .binary:
            facts.patient = FHIRReference.localID(of: resource["securityContext"], type: ResourceType.patient.rawValue, base: base)
        }
        facts.rows = rows
        return facts
    }

    static func effectiveRange(_ resource: JSONValue) -> FHIRDateRange? {
        if let text = resource["effectiveDateTime"]?.stringValue { return FHIRDate.range(of: text, kind: .dateTime) }
        guard let period = resource["effectivePeriod"] else { return nil }
        let start = period["start"]?.stringValue.flatMap { FHIRDate.range(of: $0, kind: .dateTime) }
        let end = period["end"]?.stringValue.flatMap { FHIRDate.range(of: $0, kind: .dateTime) }
        guard start != nil || end != nil else { return nil }
        return FHIRDateRange(low: start?.low ?? .distantPast, high: end?.high ?? .distantFuture)
    }

    /// Case- and accent-insensitive form used by string search.
    static func normalize(_ text: String) -> String {
        text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil).lowercased()
    }

    private static func strings(_ value: JSONValue?) -> [String] {
        value?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    private static func string(_ param: String, _ text: String) -> IndexRow {
        IndexRow(param: param, norm: normalize(text), raw: text)
    }

    private static func date(_ param: String, _ range: FHIRDateRange) -> IndexRow {
        IndexRow(param: param, low: Micros.of(range.low), high: Micros.of(range.high))
    }

    private static func codings(_ param: String, _ concept: JSONValue?) -> [IndexRow] {
        (concept?["coding"]?.arrayValue ?? []).compactMap { coding in
            guard let code = coding["code"]?.stringValue else { return nil }
            return IndexRow(param: param, system: coding["system"]?.stringValue, code: code)
        }
    }

    private static func identifiers(_ value: JSONValue?) -> [IndexRow] {
        (value?.arrayValue ?? []).compactMap { identifier in
            guard let code = identifier["value"]?.stringValue else { return nil }
            return IndexRow(param: "identifier", system: identifier["system"]?.stringValue, code: code)
        }
    }

    private static func references(_ param: String, _ value: JSONValue?, base: String) -> [IndexRow] {
        (value?.arrayValue ?? []).compactMap { reference in
            guard let text = reference["reference"]?.stringValue else { return nil }
            if let local = FHIRReference.local(text, base: base) { return IndexRow(param: param, ref: "\(local.type)/\(local.id)") }
            return IndexRow(param: param, ref: text)
        }
    }
}
