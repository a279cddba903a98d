import MedLedgerCore

/// A received AuditEvent in RFC 8785 form with the two values the chain writer sets left open:
/// `id` (the event's seq, known only under the chain lock) and `meta.lastUpdated` (when it
/// joined the chain). The request handler canonicalises; the writer only concatenates, which
/// keeps the chain's critical section short. The result is byte for byte the canonical form of
/// the stamped event, because an object's canonical form is its members' canonical forms in key
/// order. A client's `id`, `meta.lastUpdated` and `meta.versionId` are the server's to set and
/// are dropped.
struct EventTemplate: Sendable {
    private enum Piece: Sendable {
        case bytes([UInt8])
        case id
        case lastUpdated
    }

    private let pieces: [Piece]
    /// The canonical text's length without the two open values.
    let fixedCount: Int

    /// `members`: the event's. Integers beyond ±2^53 are refused rather than rounded, so the
    /// chain holds the numbers that were sent.
    init(_ members: [(key: String, value: JSONValue)]) throws(CanonicalizationError) {
        var metaEntries: [(key: String, pieces: [Piece])] = [("lastUpdated", [.bytes(Array(#""lastUpdated":"#.utf8)), .lastUpdated])]
        if case .object(let meta)? = members.first(where: { $0.key == "meta" })?.value {
            for member in meta where member.key != "lastUpdated" && member.key != "versionId" {
                metaEntries.append((member.key, [.bytes(try Self.canonicalMember(member))]))
            }
        }
        var entries: [(key: String, pieces: [Piece])] = [
            ("id", [.bytes(Array(#""id":"#.utf8)), .id]), ("meta", [.bytes(Array(#""meta":"#.utf8))] + Self.object(metaEntries)),
        ]
        for member in members where member.key != "id" && member.key != "meta" {
            entries.append((member.key, [.bytes(try Self.canonicalMember(member))]))
        }
        // Adjacent bytes merged: the writer appends a handful of pieces per event.
        var merged: [Piece] = []
        for piece in Self.object(entries) {
            if case .bytes(let next) = piece, case .bytes(let previous)? = merged.last {
                merged[merged.count - 1] = .bytes(previous + next)
            } else {
                merged.append(piece)
            }
        }
        pieces = merged
        fixedCount = merged.reduce(0) { count, piece in if case .bytes(let bytes) = piece { count + bytes.count } else { count } }
    }

    /// The stored text. `id` (digits) and `lastUpdated` (an instant) need no JSON escaping.
    func text(id: String, lastUpdated: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(fixedCount + id.utf8.count + lastUpdated.utf8.count + 4)
        for piece in pieces {
            switch piece {
            case .bytes(let bytes): out.append(contentsOf: bytes)
            case .id: Self.appendQuoted(id, to: &out)
            case .lastUpdated: Self.appendQuoted(lastUpdated, to: &out)
            }
        }
        return out
    }

    private static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: text.utf8)
        out.append(UInt8(ascii: "\""))
    }

    /// `{` entries in RFC 8785 key order (UTF-16 code units), comma-separated `}`.
    private static func object(_ entries: [(key: String, pieces: [Piece])]) -> [Piece] {
        var out: [Piece] = [.bytes([UInt8(ascii: "{")])]
        for (i, entry) in entries.sorted(by: { $0.key.utf16.lexicographicallyPrecedes($1.key.utf16) }).enumerated() {
            if i > 0 { out.append(.bytes([UInt8(ascii: ",")])) }
            out += entry.pieces
        }
        out.append(.bytes([UInt8(ascii: "}")]))
        return out
    }

    /// `"key":value` in canonical form: the canonical one-member object without its braces.
    private static func canonicalMember(_ member: (key: String, value: JSONValue)) throws(CanonicalizationError) -> [UInt8] {
        let object = try JSONValue.object([member]).canonicalized(exactIntegers: true)
        return Array(object[1..<(object.count - 1)])
    }
}
