/// FHIR JSON allows no control characters (but tab, CR, LF) and no empty strings. Audit events
/// carry what users typed (usernames, names, queries), and audit refuses an invalid event with
/// its whole batch, which would hold up every later event of that outbox: so each string is
/// made valid on its way out, control characters as "?" and an empty string as "?".
extension JSONValue {
    package var withFHIRStrings: JSONValue {
        switch self {
        case .string(let text): .string(Self.fhirString(text))
        case .array(let items): .array(items.map(\.withFHIRStrings))
        case .object(let members): .object(members.map { ($0.key, $0.value.withFHIRStrings) })
        default: self
        }
    }

    private static func fhirString(_ text: String) -> String {
        guard !text.isEmpty else { return "?" }
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { isControl($0) ? "?" : $0 }))
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value < 0x20 && scalar != "\t" && scalar != "\r" && scalar != "\n") || scalar.value == 0x7F
    }
}
