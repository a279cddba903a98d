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
    /// Ids are whole numbers (a bigint column), so a cursor's id is bound as one.
    let numericIDs: Bool

    /// `sortKeys`: what `_sort` accepts, the first being the default (descending).
    package init(type: String, defaultCount: Int, maximumCount: Int, sortKeys: [String], numericIDs: Bool = false) {
        self.type = type
        count = defaultCount
        self.maximumCount = maximumCount
        self.sortKeys = sortKeys
        self.numericIDs = numericIDs
        sortKey = sortKeys[0]
    }

    /// `name:modifier` → its two parts.
    package static func split(_ key: String) -> (name: String, modifier: String?) {
        guard let colon = key.firstIndex(of: ":") else { return (key, nil) }
        return (String(key[..<colon]), String(key[key.index(after: colon)...]))
    }

    /// One search parameter of the resource type with its values (comma-separated: any of them).
    package struct Parameter: Sendable {
        package var name: String
        package var modifier: String?
        package var values: [String]
    }

    /// Reads a search's fields. Result parameters are taken here; names not in `known` are
    /// ignored and returned (lenient) or refused (`strict`: `Prefer: handling=strict`), as the
    /// FHIR search spec says; an empty value means the parameter was not given. The others come
    /// back in order, echoed in `applied`.
    package mutating func parameters(_ fields: [(name: String, value: String)], known: [String], strict: Bool) throws(Problem)
        -> (parameters: [Parameter], ignored: [String])
    {
        var parameters: [Parameter] = []
        var ignored: [String] = []
        for (key, value) in fields {
            if try take(key, value: value) { continue }
            let (name, modifier) = Self.split(key)
            guard known.contains(name) else {
                if strict { throw Problem.badRequest("\(type) has no search parameter \(name) (Prefer: handling=strict)") }
                ignored.append(key)
                continue
            }
            let values = value.split(separator: ",", omittingEmptySubsequences: true).map(String.init)
            guard !values.isEmpty else { continue }
            parameters.append(Parameter(name: name, modifier: modifier, values: values))
            applied.append((key, value))
        }
        return (parameters, ignored)
    }

    /// The code of a token searched on an element bound to one code system (`code`, `|code` or
    /// `system|code`); nil for another system's token, which matches no code.
    package static func code(_ token: String, system: String) -> String? {
        guard let bar = token.firstIndex(of: "|") else { return token }
        let given = token[..<bar]
        return given.isEmpty || given == system ? String(token[token.index(after: bar)...]) : nil
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
            guard let cursor = SearchCursor(value), !numericIDs || Int64(cursor.id) != nil else {
                throw Problem.badRequest("_cursor is not one this server issued")
            }
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
    package var paging: KeysetPaging { KeysetPaging(limit: count, cursor: cursor, descending: descending, numericIDs: numericIDs) }
}
