import HTTPTypes
import MedLedgerCore

/// The validated body of `POST /entries`.
struct EntryBatch {
    var entries: [PreparedEntry]

    init(_ body: JSONValue, maxEntries: Int, maxEntryBytes: Int) throws(Problem) {
        guard case .object(let members) = body else { throw Problem.badRequest("the body must be a JSON object") }
        if let unknown = members.first(where: { $0.key != "entries" }) {
            throw Problem.badRequest("unknown member \"\(unknown.key)\"; the body is {\"entries\": [...]}")
        }
        guard let list = body["entries"] else { throw Problem.badRequest("entries is required") }
        guard case .array(let items) = list else { throw Problem.badRequest("entries must be an array") }
        guard !items.isEmpty else { throw Problem.badRequest("entries must hold at least one entry") }
        guard items.count <= maxEntries else {
            throw Problem(.contentTooLarge, "at most \(maxEntries) entries per request, got \(items.count)")
        }
        var prepared: [PreparedEntry] = []
        prepared.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            prepared.append(try Self.entry(item, at: i, maxEntryBytes: maxEntryBytes))
        }
        entries = prepared
    }

    private static func entry(_ item: JSONValue, at i: Int, maxEntryBytes: Int) throws(Problem) -> PreparedEntry {
        guard case .object(let members) = item else { throw Problem.badRequest("entries[\(i)] must be an object") }
        if let unknown = members.first(where: { $0.key != "idempotencyKey" && $0.key != "entry" }) {
            throw Problem.badRequest("entries[\(i)] has unknown member \"\(unknown.key)\"")
        }
        guard case .string(let key)? = item["idempotencyKey"] else {
            throw Problem.badRequest("entries[\(i)].idempotencyKey is required and must be a string")
        }
        guard (1...256).contains(key.count) else { throw Problem.badRequest("entries[\(i)].idempotencyKey must be 1 to 256 characters") }
        guard let entry = item["entry"] else { throw Problem.badRequest("entries[\(i)].entry is required") }
        guard entry.isObject else { throw Problem.badRequest("entries[\(i)].entry must be a JSON object, got \(entry.typeName)") }
        let data: [UInt8]
        do {
            data = try entry.canonicalized(exactIntegers: true)
        } catch {
            throw Problem.badRequest("entries[\(i)].entry cannot be canonicalised (RFC 8785): \(error.message)")
        }
        guard data.count <= maxEntryBytes else {
            throw Problem(.contentTooLarge, "entries[\(i)].entry is \(data.count) bytes in canonical form; the limit is \(maxEntryBytes)")
        }
        return PreparedEntry(idempotencyKey: key, data: data)
    }
}
