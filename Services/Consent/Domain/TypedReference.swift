import MedLedgerCore

/// References as consents, decisions and break-glass sessions hold them: relative `Type/id`,
/// without a version, of one of the types allowed where they appear.
enum TypedReference {
    /// `text` when it is `Type/id` with `Type` one of `types`.
    static func parse(_ text: String, _ types: [String]) -> String? {
        guard let relative = PrimitiveSyntax.relativeReference(text), relative.version == nil, types.contains(String(relative.type)) else {
            return nil
        }
        return text
    }

    /// `Type/{id} or …`, for messages.
    static func shapes(_ types: [String]) -> String {
        types.map { "\($0)/{id}" }.joined(separator: " or ")
    }
}
