import HTTPTypes
import MedLedgerCore

/// The validated body of `POST /events`: `{"events": [{"idempotencyKey", "event"}]}`, the
/// ledger's `POST /entries` shape. A batch is atomic: the first bad item fails the request,
/// named by its position.
struct EventBatch {
    static let keyLength = 1...200

    var events: [PreparedEvent]

    init(_ body: JSONValue, maxEvents: Int, maxEventBytes: Int) throws(Problem) {
        let items = try IdempotentBatch.items(body, list: "events", item: "event", maxItems: maxEvents, keyLength: Self.keyLength)
        var prepared: [PreparedEvent] = []
        prepared.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            prepared.append(try Self.event(item, at: i, maxEventBytes: maxEventBytes))
        }
        events = prepared
    }

    private static func event(_ item: IdempotentBatch.Item, at i: Int, maxEventBytes: Int) throws(Problem) -> PreparedEvent {
        let event = item.value
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
            template = try EventTemplate(item.members)
        } catch {
            throw Problem(.unprocessableContent, "events[\(i)].event cannot be canonicalised (RFC 8785): \(error.message)")
        }
        guard template.fixedCount <= maxEventBytes else {
            throw Problem(.contentTooLarge, "events[\(i)].event is \(template.fixedCount) bytes in canonical form; the limit is \(maxEventBytes)")
        }
        return PreparedEvent(idempotencyKey: item.key, template: template, index: index)
    }
}
