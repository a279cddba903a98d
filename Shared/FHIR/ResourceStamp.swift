package import Foundation

/// The server's part of every stored version: `id` and `meta.versionId`/`lastUpdated` set,
/// everything else kept as the client sent it (unknown elements and decimal text included).
package enum ResourceStamp {
    package static func stamp(_ resource: JSONValue, type: String, id: String, version: Int, lastUpdated: Date) -> JSONValue {
        guard case .object(let members) = resource else { return resource }
        var meta: [(key: String, value: JSONValue)] = [
            ("versionId", .string(String(version))), ("lastUpdated", .string(FHIRDate.instantText(lastUpdated))),
        ]
        if case .object(let clientMeta) = resource["meta"] {
            meta += clientMeta.filter { $0.key != "versionId" && $0.key != "lastUpdated" }
        }
        var stamped: [(key: String, value: JSONValue)] = [("resourceType", .string(type)), ("id", .string(id)), ("meta", .object(meta))]
        stamped += members.filter { !["resourceType", "id", "meta"].contains($0.key) }
        return .object(stamped)
    }

    /// Replaces (or adds) one top-level element, keeping the order of the others.
    package static func setting(_ key: String, to value: JSONValue?, in resource: JSONValue) -> JSONValue {
        guard case .object(var members) = resource else { return resource }
        if let index = members.firstIndex(where: { $0.key == key }) {
            if let value { members[index].value = value } else { members.remove(at: index) }
        } else if let value {
            members.append((key, value))
        }
        return .object(members)
    }

    /// Server time with the millisecond precision `meta.lastUpdated` shows, so that what is
    /// stored, served and compared in searches is the same instant.
    package static func now() -> Date {
        Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }
}
