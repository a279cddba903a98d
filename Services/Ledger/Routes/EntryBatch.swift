import HTTPTypes
import MedLedgerCore

/// The validated body of `POST /entries`.
struct EntryBatch {
    var entries: [PreparedEntry]

    init(_ body: JSONValue, maxEntries: Int, maxEntryBytes: Int) throws(Problem) {
        let items = try IdempotentBatch.items(body, list: "entries", item: "entry", maxItems: maxEntries, keyLength: 1...256)
        var prepared: [PreparedEntry] = []
        prepared.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            let data: [UInt8]
            do {
                data = try item.value.canonicalized(exactIntegers: true)
            } catch {
                throw Problem.badRequest("entries[\(i)].entry cannot be canonicalised (RFC 8785): \(error.message)")
            }
            guard data.count <= maxEntryBytes else {
                throw Problem(.contentTooLarge, "entries[\(i)].entry is \(data.count) bytes in canonical form; the limit is \(maxEntryBytes)")
            }
            prepared.append(PreparedEntry(idempotencyKey: item.key, data: data))
        }
        entries = prepared
    }
}
