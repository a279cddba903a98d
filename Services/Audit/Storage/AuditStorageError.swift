/// The audit database lacks what its migrations create: not a client's fault.
struct AuditStorageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
