
/// Local references: `Type/id` (optionally `/_history/n`, or absolute under our own base).
package enum FHIRReference {
    /// `Type/id` for a reference to a resource of this server, nil for anything else
    /// (contained `#x`, `urn:uuid:`, other servers).
    package static func local(_ reference: String, base: String) -> (type: String, id: String)? {
        var text = Substring(reference)
        if text.hasPrefix(base + "/") { text = text.dropFirst(base.count + 1) }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 || (parts.count == 4 && parts[2] == "_history"),
            let first = parts[0].first, first.isUppercase, parts[0].allSatisfy({ $0.isLetter }), isValidID(parts[1])
        else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    /// The `reference` of a Reference element when it names a local resource of `type`.
    package static func localID(of element: JSONValue?, type: String, base: String) -> String? {
        guard let text = element?["reference"]?.stringValue, let local = local(text, base: base), local.type == type else { return nil }
        return local.id
    }

    /// FHIR ids: 1–64 of `A-Z a-z 0-9 - .`.
    package static func isValidID(_ id: some StringProtocol) -> Bool {
        (1...64).contains(id.utf8.count)
            && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x2E }
    }
}
