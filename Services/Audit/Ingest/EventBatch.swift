import HTTPTypes
import MedLedgerCore

/// The validated body of `POST /events`: `{"events": [{"idempotencyKey", "event"}]}`, the
/// ledger's `POST /entries` shape, so one outbox worker serves every service. A batch is
/// atomic: the first bad item fails the request, named by its position.
struct EventBatch {
    static let keyLength = 1...200

    var events: [PreparedEvent]

    init(_ body: JSONValue, maxEvents: Int, maxEventBytes: Int) throws(Problem) {
        guard case .object(let members) = body else { throw Problem.badRequest("the body must be a JSON object") }
        if let unknown = members.first(where: { $0.key != "events" }) {
            throw Problem.badRequest("unknown member \"\(unknown.key)\"; the body is {\"events\": [...]}")
        }
        guard let list = body["events"] else { throw Problem.badRequest("events is required") }
        guard case .array(let items) = list else { throw Problem.badRequest("events must be an array") }
        guard !items.isEmpty else { throw Problem.badRequest("events must hold at least one event") }
        guard items.count <= maxEvents else { throw Problem(.contentTooLarge, "at most \(maxEvents) events per request, got \(items.count)") }
        var prepared: [PreparedEvent] = []
        prepared.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            prepared.append(try Self.event(item, at: i, maxEventBytes: maxEventBytes))
        }
        events = prepared
    }

    private static func event(_ item: JSONValue, at i: Int, maxEventBytes: Int) throws(Problem) -> PreparedEvent {
        guard case .object(let members) = item else { throw Problem.badRequest("events[\(i)] must be an object") }
        if let unknown = members.first(where: { $0.key != "idempotencyKey" && $0.key != "event" }) {
            throw Problem.badRequest("events[\(i)] has unknown member \"\(unknown.key)\"")
        }
        guard case .string(let key)? = item["idempotencyKey"] else {
            throw Problem.badRequest("events[\(i)].idempotencyKey is required and must be a string")
        }
        guard keyLength.contains(key.count) else {
            throw Problem.badRequest("events[\(i)].idempotencyKey must be \(keyLength.lowerBound) to \(keyLength.upperBound) characters")
        }
        guard let event = item["event"] else { throw Problem.badRequest("events[\(i)].event is required") }
        guard case .object(let members) = event else { throw Problem.badRequest("events[\(i)].event must be a JSON object, got \(event.typeName)") }
        let issues = AuditEventElements.issues(event)
        if !issues.isEmpty {
            let listed = issues.prefix(5).map { "\($0.expression): \($0.message)" }.joined(separator: "; ")
            throw Problem(.unprocessableContent, "events[\(i)].event is not a valid FHIR R4 AuditEvent: \(listed)")
        }
        // The element rules checked `recorded` is an instant, so the index always exists.
        guard let index = AuditEventIndex(event) else {
            throw Problem(.unprocessableContent, "events[\(i)].event.recorded must be a FHIR instant")
        }
        let template: EventTemplate
        do {
            template = try EventTemplate(members)
        } catch {
            throw Problem(.unprocessableContent, "events[\(i)].event cannot be canonicalised (RFC 8785): \(error.message)")
        }
        guard template.fixedCount <= maxEventBytes else {
            throw Problem(.contentTooLarge, "events[\(i)].event is \(template.fixedCount) bytes in canonical form; the limit is \(maxEventBytes)")
        }
        return PreparedEvent(idempotencyKey: key, template: template, index: index)
    }
}
