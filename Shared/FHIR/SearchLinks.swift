package import Foundation

/// The links of a search Bundle: `self` with the parameters applied, `next` and `previous`
/// with cursors from the page's last and first rows.
package enum SearchLinks {
    /// `first`/`last`: the sort value and id of the page's first and last rows.
    package static func searchset(
        base: String, applied: [(name: String, value: String)], cursor: SearchCursor?, page: (hasNext: Bool, hasPrevious: Bool),
        first: (sortValue: Int64, id: String)?, last: (sortValue: Int64, id: String)?
    ) -> [(relation: String, url: String)] {
        func url(_ extra: [(name: String, value: String)]) -> String {
            let items = (applied + extra).map { encode($0.name) + "=" + encode($0.value) }
            return items.isEmpty ? base : base + "?" + items.joined(separator: "&")
        }
        var links = [(relation: "self", url: url(cursor.map { [("_cursor", $0.text)] } ?? []))]
        if page.hasNext, let last {
            links.append(("next", url([("_cursor", SearchCursor(after: true, sortValue: last.sortValue, id: last.id).text)])))
        }
        if page.hasPrevious, let first {
            links.append(("previous", url([("_cursor", SearchCursor(after: false, sortValue: first.sortValue, id: first.id).text)])))
        }
        return links
    }

    /// Percent-encodes a query name or value, leaving what FHIR values use unescaped.
    package static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .fhirQueryAllowed) ?? text
    }
}

extension CharacterSet {
    /// Unreserved characters plus those FHIR values use unescaped (`|`, `:`, `,`).
    package static let fhirQueryAllowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~|:,/")
}
