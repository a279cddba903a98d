import HTTPTypes

/// The body of MedLedger's idempotent batch writes, `{"<list>": [{"idempotencyKey": "…",
/// "<item>": …}]}`: the ledger's `POST /entries` and audit's `POST /events` share it, so one
/// outbox worker serves both. Checks the envelope; the caller checks each item's value.
package enum IdempotentBatch {
    /// One item: its key and its value, which is always a JSON object.
    package struct Item {
        package var key: String
        package var members: [(key: String, value: JSONValue)]
        package var value: JSONValue { .object(members) }
    }

    /// The items in order. 400 for a malformed envelope, 413 beyond `maxItems`; messages name
    /// the item (`events[3].idempotencyKey`).
    package static func items(_ body: JSONValue, list: String, item: String, maxItems: Int, keyLength: ClosedRange<Int>) throws(Problem) -> [Item] {
        guard case .object(let members) = body else { throw Problem.badRequest("the body must be a JSON object") }
        if let unknown = members.first(where: { $0.key != list }) {
            throw Problem.badRequest("unknown member \"\(unknown.key)\"; the body is {\"\(list)\": [...]}")
        }
        guard let value = body[list] else { throw Problem.badRequest("\(list) is required") }
        guard case .array(let elements) = value else { throw Problem.badRequest("\(list) must be an array") }
        guard !elements.isEmpty else { throw Problem.badRequest("\(list) must hold at least one \(item)") }
        guard elements.count <= maxItems else { throw Problem(.contentTooLarge, "at most \(maxItems) \(list) per request, got \(elements.count)") }
        var items: [Item] = []
        items.reserveCapacity(elements.count)
        for (i, element) in elements.enumerated() {
            let path = "\(list)[\(i)]"
            guard case .object(let members) = element else { throw Problem.badRequest("\(path) must be an object") }
            if let unknown = members.first(where: { $0.key != "idempotencyKey" && $0.key != item }) {
                throw Problem.badRequest("\(path) has unknown member \"\(unknown.key)\"")
            }
            guard case .string(let key)? = element["idempotencyKey"] else {
                throw Problem.badRequest("\(path).idempotencyKey is required and must be a string")
            }
            guard keyLength.contains(key.count) else {
                throw Problem.badRequest("\(path).idempotencyKey must be \(keyLength.lowerBound) to \(keyLength.upperBound) characters")
            }
            guard let value = element[item] else { throw Problem.badRequest("\(path).\(item) is required") }
            guard case .object(let members) = value else {
                throw Problem.badRequest("\(path).\(item) must be a JSON object, got \(value.typeName)")
            }
            items.append(Item(key: key, members: members))
        }
        return items
    }
}
