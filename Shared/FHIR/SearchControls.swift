/// The result parameters of a FHIR search (search.html, "Modifying Search Results") that every
/// MedLedger FHIR server handles alike: `_count`, `_sort` (one key, `-` for descending),
/// `_total`, the `_cursor` of its paging links, and `_format`/`_pretty`, which change nothing
/// here (formats are negotiated elsewhere). What was applied is echoed in the `self` link.
package struct SearchControls: Sendable {
    package var count: Int
    package var sortKey: String
    package var descending = true
    package var includeTotal = true
    package var cursor: SearchCursor?
    /// The parameters applied, for the `self`/`next`/`previous` links (without `_cursor`).
    package var applied: [(name: String, value: String)] = []
    let type: String
    let maximumCount: Int
    let sortKeys: [String]

    /// `sortKeys`: what `_sort` accepts, the first being the default (descending).
    package init(type: String, defaultCount: Int, maximumCount: Int, sortKeys: [String]) {
        self.type = type
        count = defaultCount
        self.maximumCount = maximumCount
        self.sortKeys = sortKeys
        sortKey = sortKeys[0]
    }

    /// `name:modifier` → its two parts.
    package static func split(_ key: String) -> (name: String, modifier: String?) {
        guard let colon = key.firstIndex(of: ":") else { return (key, nil) }
        return (String(key[..<colon]), String(key[key.index(after: colon)...]))
    }

    /// Takes `key=value` when it is one of these parameters (400 for a bad value); false for
    /// anything else, which the caller interprets.
    package mutating func take(_ key: String, value: String) throws(Problem) -> Bool {
        let (name, modifier) = Self.split(key)
        switch name {
        case "_format", "_pretty":
            return true
        case "_count":
            guard modifier == nil, let number = Int(value), number >= 0 else {
                throw Problem.badRequest("_count must be a whole number ≥ 0, got \"\(value)\"")
            }
            count = min(number, maximumCount)
            applied.append((key, String(count)))
        case "_sort":
            try parseSort(value)
            applied.append((key, value))
        case "_total":
            guard ["none", "estimate", "accurate"].contains(value) else { throw Problem.badRequest("_total must be none, estimate or accurate") }
            includeTotal = value != "none"
            applied.append((key, value))
        case "_cursor":
            guard let cursor = SearchCursor(value) else { throw Problem.badRequest("_cursor is not one this server issued") }
            self.cursor = cursor
        default:
            return false
        }
        return true
    }

    private mutating func parseSort(_ value: String) throws(Problem) {
        let choices = sortKeys.joined(separator: ", ")
        let keys = value.split(separator: ",")
        guard keys.count == 1, let first = keys.first else {
            throw Problem.badRequest("_sort takes one key here: \(choices) (prefix - for descending)")
        }
        let descending = first.hasPrefix("-")
        let key = String(descending ? first.dropFirst() : first)
        guard sortKeys.contains(key) else { throw Problem.badRequest("_sort=\(value) is not supported for \(type): use \(choices)") }
        sortKey = key
        self.descending = descending
    }

    /// The paging of this search's page query.
    package var paging: KeysetPaging { KeysetPaging(limit: count, cursor: cursor, descending: descending) }
}
