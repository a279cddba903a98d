/// Where an event is in the chain: its seq (the AuditEvent's id), and whether its key was
/// stored before (by an earlier request, or earlier in the same batch).
struct ChainReceipt: Sendable, Equatable {
    var seq: Int64
    var duplicate: Bool
}
