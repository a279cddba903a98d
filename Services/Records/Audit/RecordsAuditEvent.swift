import Foundation
import MedLedgerCore

/// What records tells the audit service: one FHIR R4 AuditEvent per interaction (type `rest`,
/// subtype the RESTful interaction), naming the caller, the version touched and its patient.
struct RecordsAuditEvent: Sendable {
    enum Kind: String, Sendable {
        case create, read, vread, update, delete
        case searchType = "search-type"
        case historyInstance = "history-instance"
        case historyType = "history-type"
        /// `$verify` (an extended operation).
        case operation
        /// A subscription's notification: the report version disclosed to its subscriber.
        case notify

        var action: String {
            switch self {
            case .create: "C"
            case .update: "U"
            case .delete: "D"
            case .read, .vread, .searchType, .historyInstance, .historyType, .notify: "R"
            case .operation: "E"
            }
        }
    }

    var kind: Kind
    var caller: Caller
    /// The resource type concerned (`Provenance` too, which records derives rather than stores).
    var type: String
    /// `Type/id/_history/n` (or `Type/id`) when one resource is concerned.
    var entity: String? = nil
    var patient: String? = nil
    /// The query string of a search.
    var query: String? = nil
    /// The extended operation's name (`verify`, `verify-all`, `erase`) when `kind` is `.operation`.
    var operation: String? = nil
    /// HTTP status when it failed (outcome 4, minor failure).
    var failure: Int? = nil
    /// A tamper alarm (outcome 8, serious failure): what `$verify` found wrong.
    var alarm: String? = nil
    /// What an operation found when it succeeded (`$verify`: verified or pending).
    var result: String? = nil
    /// The version makes a report `final` (a doctor's approval): a second subtype says so.
    var approval = false
    /// The break-glass session (`break-glass/…`) in force for the patient: the read is flagged
    /// as emergency access, which the patient's audit view shows.
    var breakGlass: String? = nil

    /// A RESTful interaction's code, or MedLedger's own for what FHIR's value set has none of.
    private var interactionCoding: [JSONValue] {
        kind == .notify ? [Self.notifyCoding] : [AuditEventParts.restfulInteraction(kind.rawValue)]
    }

    /// The operation by its canonical name (as the CapabilityStatement lists `$verify`).
    private var operationCoding: [JSONValue] {
        operation.map { [AuditEventParts.coding("https://medledger.dev/fhir/OperationDefinition", $0, "$" + $0)] } ?? []
    }

    /// The most of a search's query an event keeps.
    static let queryLimit = 16 * 1024

    static let notifyCoding = AuditEventParts.coding("https://medledger.dev/fhir/CodeSystem/subscription", "notify", "subscription notification")

    static let approvalCoding = AuditEventParts.coding("https://medledger.dev/fhir/CodeSystem/report-workflow", "approve", "report approved (final)")

    /// This event once for each patient concerned, or as it is when none is: a search or history
    /// that returns several patients' records is a disclosure to each of them (IHE BALP: one
    /// AuditEvent per patient), and each patient's audit view finds their own.
    func perPatient(_ patients: some Sequence<String?>) -> [RecordsAuditEvent] {
        let concerned = Set(patients.compactMap { $0 }).sorted()
        guard !concerned.isEmpty else { return [self] }
        return concerned.map { patient in
            var event = self
            event.patient = patient
            return event
        }
    }

    func resource(recorded: Date) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("resourceType", .string("AuditEvent")),
            ("type", AuditEventParts.restType),
            ("subtype", .array(interactionCoding + operationCoding + (approval ? [Self.approvalCoding] : []))),
            ("action", .string(kind.action)),
            ("recorded", .string(FHIRDate.instantText(recorded))),
            ("outcome", .string(alarm != nil ? "8" : failure == nil ? "0" : "4")),
        ]
        if let alarm {
            members.append(("outcomeDesc", .string(alarm)))
        } else if let failure {
            members.append(("outcomeDesc", .string("answered \(failure)")))
        } else if let result {
            members.append(("outcomeDesc", .string(result)))
        }
        if let breakGlass {
            members.append(("purposeOfEvent", .array([.object([("coding", .array([AuditEventParts.breakTheGlass])), ("text", .string(breakGlass))])])))
        }
        members.append(("agent", .array([caller.auditAgent])))
        members.append(("source", AuditEventParts.source(site: "medledger-records", type: ("4", "Application Server"))))
        var entities: [JSONValue] = []
        if let entity { entities.append(AuditEventParts.resourceEntity(entity)) }
        if let query, !query.isEmpty {
            // Audit takes events of up to 64 KiB; a POST _search may send far more.
            let bytes = Array(query.utf8)
            var members: [(key: String, value: JSONValue)] = [
                ("type", AuditEventParts.coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object")),
                ("role", AuditEventParts.coding("http://terminology.hl7.org/CodeSystem/object-role", "24", "Query")),
                ("description", .string(type)),
                ("query", .string(Array(bytes.prefix(Self.queryLimit)).base64String)),
            ]
            if bytes.count > Self.queryLimit {
                members.append(("detail", .array([.object([("type", .string("query-bytes")), ("valueString", .string("\(bytes.count), cut to \(Self.queryLimit)"))])])))
            }
            entities.append(.object(members))
        }
        if let patient { entities.append(AuditEventParts.patientEntity("Patient/\(patient)")) }
        if !entities.isEmpty { members.append(("entity", .array(entities))) }
        return .object(members)
    }
}
