import HTTPTypes
import MedLedgerCore

/// `POST /decisions`: may `actor` do `action` on `patient`'s report (`resource`, of the
/// categories `categories`)? Records asks before it shows a report to someone who is neither
/// its patient nor their assigned doctor.
struct DecisionQuestion: Sendable, Equatable {
    var actor: String
    var patient: String
    /// `DiagnosticReport/z`, when one report is asked about.
    var resource: String?
    /// The report's v2-0074 category codes.
    var categories: [String]

    static let fields: Set<String> = ["actor", "patient", "action", "resource", "category"]

    /// 400 for a body that is not this question's shape, 422 for values MedLedger cannot decide on.
    init(_ body: JSONValue) throws(Problem) {
        guard case .object(let members) = body else { throw Problem.badRequest("the body must be a JSON object") }
        if let unknown = members.first(where: { !Self.fields.contains($0.key) }) {
            throw Problem.badRequest("unknown field \(unknown.key): a decision takes \(Self.fields.sorted().joined(separator: ", "))")
        }
        actor = try Self.required(body, "actor", types: ["Practitioner", "Organization"])
        patient = try Self.required(body, "patient", types: ["Patient"])
        resource = try Self.reference(body, "resource", types: ["DiagnosticReport"])
        switch body["action"] {
        case .string("read")?: break
        case .string(let action)?: throw Problem(.unprocessableContent, "action \(action) is not decided here: consents grant read access only")
        case nil: throw Problem(.unprocessableContent, "action is required (read)")
        case let other?: throw Problem.badRequest("action must be a string, not \(other.describedType)")
        }
        switch body["category"] {
        case nil:
            categories = []
        case .array(let items)?:
            categories = try items.map { item throws(Problem) in
                guard case .string(let code) = item else { throw Problem.badRequest("category must be an array of category codes (strings)") }
                return code
            }
        case let other?:
            throw Problem.badRequest("category must be an array of category codes, not \(other.describedType)")
        }
    }

    /// `Type/id` of one of `types` from `field`: 400 when not a string, 422 when malformed.
    static func reference(_ body: JSONValue, _ field: String, types: [String]) throws(Problem) -> String? {
        guard let value = body[field] else { return nil }
        guard case .string(let text) = value else { throw Problem.badRequest("\(field) must be a string reference, not \(value.describedType)") }
        guard let reference = TypedReference.parse(text, types) else {
            throw Problem(.unprocessableContent, "\(field) must be \(TypedReference.shapes(types)), got \(text)")
        }
        return reference
    }

    /// The same for a field the body must have (422 without it).
    static func required(_ body: JSONValue, _ field: String, types: [String]) throws(Problem) -> String {
        guard let reference = try reference(body, field, types: types) else { throw Problem(.unprocessableContent, "\(field) is required") }
        return reference
    }
}
