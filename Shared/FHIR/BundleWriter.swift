package import Foundation

/// Writes a Bundle's bytes directly, putting each resource's stored bytes in as they are: no
/// re-parse, and what a search returns is byte for byte what vread serves.
package struct BundleWriter {
    private var bytes: [UInt8] = []
    private var entries = 0

    package init(type: String, total: Int?, links: [(relation: String, url: String)]) {
        append(#"{"resourceType":"Bundle","id":"#)
        append(JSONValue.string(UUID().uuidString.lowercased()).serialized())
        append(#","meta":{"lastUpdated":"#)
        append(JSONValue.string(FHIRDate.instantText(Date())).serialized())
        append(#"},"type":"#)
        append(JSONValue.string(type).serialized())
        if let total { append(#","total":\#(total)"#) }
        if !links.isEmpty {
            let linkArray = JSONValue.array(links.map { .object([("relation", .string($0.relation)), ("url", .string($0.url))]) })
            append(#","link":"#)
            append(linkArray.serialized())
        }
    }

    /// One entry: `resource` is already-serialised JSON (nil for a history entry of a deletion).
    package mutating func entry(fullUrl: String, resource: [UInt8]?, extra: [(key: String, value: JSONValue)]) {
        append(entries == 0 ? #","entry":[{"# : #",{"#)
        entries += 1
        append(#""fullUrl":"#)
        append(JSONValue.string(fullUrl).serialized())
        if let resource {
            append(#","resource":"#)
            bytes += resource
        }
        for (key, value) in extra {
            append(",")
            append(JSONValue.string(key).serialized())
            append(":")
            append(value.serialized())
        }
        append("}")
    }

    /// One entry of a history Bundle: a version (`resource` nil for a deletion) and the
    /// interaction that made it, as FHIR http.html "history" shows them.
    package mutating func historyEntry(fullUrl: String, resource: [UInt8]?, type: String, id: String, version: Int, lastUpdated: Date) {
        let deleted = resource == nil
        let method = deleted ? "DELETE" : version == 1 ? "POST" : "PUT"
        let status = deleted ? "204 No Content" : version == 1 ? "201 Created" : "200 OK"
        entry(
            fullUrl: fullUrl, resource: resource,
            extra: [
                ("request", .object([("method", .string(method)), ("url", .string(method == "POST" ? type : "\(type)/\(id)"))])),
                (
                    "response",
                    .object([
                        ("status", .string(status)), ("etag", .string("W/\"\(version)\"")),
                        ("lastModified", .string(FHIRDate.instantText(lastUpdated))),
                    ])
                ),
            ])
    }

    /// A warning about the search itself as an `outcome` entry (FHIR search.html).
    package mutating func warning(_ issue: FHIRIssue) {
        entry(
            fullUrl: "urn:uuid:\(UUID().uuidString.lowercased())", resource: issue.outcome(severity: "warning").serialized(),
            extra: [("search", .object([("mode", .string("outcome"))]))])
    }

    package mutating func finish() -> [UInt8] {
        append(entries == 0 ? "}" : "]}")
        return bytes
    }

    private mutating func append(_ text: String) { bytes += Array(text.utf8) }
    private mutating func append(_ serialized: [UInt8]) { bytes += serialized }
}

extension FHIRIssue {
    /// Lenient handling drops unknown parameters; the FHIR search spec asks to say which.
    package static func ignoredSearchParameters(_ names: [String]) -> FHIRIssue {
        FHIRIssue(code: "not-supported", diagnostics: "ignored unknown search parameters: \(names.joined(separator: ", "))")
    }
}
