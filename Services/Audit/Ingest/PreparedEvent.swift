/// An event ready for the chain: validated, canonicalised up to its open values and indexed by
/// the request handler, so the chain writer only numbers, hashes and writes.
struct PreparedEvent: Sendable {
    var idempotencyKey: String
    var template: EventTemplate
    var index: AuditEventIndex
}
