/// An event ready for the chain: validated, canonicalised up to its open values and indexed by
/// the request handler, so the chain writer only numbers, hashes and writes.
struct PreparedEvent: Sendable {
    var idempotencyKey: String
    var template: EventTemplate
    var index: AuditEventIndex
}

/// Where an event is in the chain: its seq (the AuditEvent's id), and whether its key was
/// stored before (by an earlier request, or earlier in the same batch).
struct ChainReceipt: Sendable, Equatable {
    var seq: Int64
    var duplicate: Bool
}
