package import Foundation
package import Logging
package import PostgresNIO

/// One delivery of a service's `audit_outbox` to the audit service (design guide, "Nothing
/// lost"), in one transaction: claim the oldest rows (`SKIP LOCKED`, so several processes share
/// the outbox), `POST /events` them with their idempotency keys, check that the answer names
/// every key, and delete them. Delivered rows are deleted rather than marked: audit holds them
/// from then on, and marked rows would only grow the outbox. If anything fails (audit down or
/// refusing, a bad answer, the commit), the rows stay and the retry sends the same keys, which
/// audit stores once. An event audit would refuse goes as a valid stand-in that carries it, so
/// one bad event never holds up the rest.
package struct AuditDelivery: Sendable {
    let postgres: PostgresClient
    let client: ServiceClient
    let eventsURL: URL
    let batchLimit: Int
    let logger: Logger

    /// Most bytes of events in one request (a single larger event still goes alone): well
    /// under audit's default request limit (`MAX_BODY_BYTES`, 16 MiB), as `batchLimit` is under
    /// its `AUDIT_BATCH_LIMIT` (1000).
    static let byteLimit = 4 << 20

    package init(postgres: PostgresClient, client: ServiceClient, auditURL: URL, batchLimit: Int = 500, logger: Logger) {
        self.postgres = postgres
        self.client = client
        self.eventsURL = auditURL.appendingPathComponent("events")
        self.batchLimit = batchLimit
        self.logger = logger
    }

    /// What audit said that delivery cannot fix by itself: the rows stay and are retried.
    package struct Refused: Error, CustomStringConvertible {
        package var description: String
    }

    /// The worker that runs this delivery; `wake()` it after a transaction that wrote rows.
    package func worker() -> OutboxWorker {
        OutboxWorker(name: "audit outbox", logger: logger) { try await deliverBatch() }
    }

    /// How many rows it delivered; 0 when the outbox is empty.
    package func deliverBatch() async throws -> Int {
        try await Database.transaction(postgres, logger: logger) { connection in
            let rows = try await connection.query(
                "SELECT id, idempotency_key, event FROM audit_outbox ORDER BY id LIMIT \(batchLimit) FOR UPDATE SKIP LOCKED", logger: logger
            ).collect()
            var ids: [Int64] = []
            var events: [JSONValue] = []
            var keys: [String] = []
            var bytes = 0
            for row in rows {
                let (id, key, event) = try row.decode((Int64, String, String).self)
                bytes += event.utf8.count
                // The rows left out stay; the next batch starts with them.
                if !ids.isEmpty && bytes > Self.byteLimit { break }
                ids.append(id)
                keys.append(key)
                events.append(.object([("idempotencyKey", .string(key)), ("event", Self.deliverable(try JSONParser.parse(Array(event.utf8)), key: key))]))
            }
            guard !ids.isEmpty else { return 0 }
            try await send(events, keys: keys)
            try await connection.query("DELETE FROM audit_outbox WHERE id = ANY(\(ids))", logger: logger)
            return ids.count
        }
    }

    /// The event as audit will take it: its strings made valid, or, when it is still not a valid
    /// AuditEvent, a stand-in that carries it whole (the key's prefix names the service).
    static func deliverable(_ stored: JSONValue, key: String) -> JSONValue {
        let event = stored.withFHIRStrings
        let issues = AuditEventElements.issues(event)
        guard !issues.isEmpty else { return event }
        return UnreadableAuditEvent.standIn(for: stored, issues: issues, service: String(key.prefix { $0 != "-" }))
    }

    private func send(_ events: [JSONValue], keys: [String]) async throws {
        let answer: JSONValue
        do {
            answer = try await client.post(eventsURL, json: .object([("events", .array(events))]), timeout: .seconds(30), logger: logger)
        } catch let error as ServiceClient.CallError where (400..<500).contains(error.status) {
            // Not a passing outage: someone must look (the events stay until audit takes them).
            throw Refused(description: "audit refused \(keys.count) events (\(keys[0]) …): \(error.description)")
        }
        let answered = Set((answer["events"]?.arrayValue ?? []).compactMap { $0["idempotencyKey"]?.stringValue })
        let missing = keys.filter { !answered.contains($0) }
        guard missing.isEmpty else {
            throw Refused(description: "audit's answer does not name \(missing.count) of the \(keys.count) events sent, e.g. \(missing[0])")
        }
    }
}
