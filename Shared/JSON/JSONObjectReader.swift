/// Reads the members of a JSON request object with clear 400s: a member of the wrong type, a
/// required one missing, an unknown one (typos must not be silently ignored), a string too long.
public struct JSONObjectReader: Sendable {
    let members: [(key: String, value: JSONValue)]

    public init(_ value: JSONValue, allowed: Set<String>) throws(Problem) {
        guard case .object(let members) = value else { throw Problem.badRequest("the body must be a JSON object, not \(value.typeName)") }
        if let unknown = members.first(where: { !allowed.contains($0.key) }) {
            throw Problem.badRequest("unknown member \"\(unknown.key)\"; allowed: \(allowed.sorted().joined(separator: ", "))")
        }
        self.members = members
    }

    public func has(_ key: String) -> Bool { members.contains { $0.key == key } }

    public func string(_ key: String, maxLength: Int = 1024) throws(Problem) -> String {
        guard let value = try optionalString(key, maxLength: maxLength) else { throw Problem.badRequest("\"\(key)\" is required") }
        return value
    }

    /// Nil when absent or null.
    public func optionalString(_ key: String, maxLength: Int = 1024) throws(Problem) -> String? {
        guard let value = members.first(where: { $0.key == key })?.value else { return nil }
        switch value {
        case .null: return nil
        case .string(let text):
            guard text.count <= maxLength else { throw Problem.badRequest("\"\(key)\" is longer than \(maxLength) characters") }
            return text
        default: throw Problem.badRequest("\"\(key)\" must be a string, not \(value.typeName)")
        }
    }

    public func optionalBool(_ key: String) throws(Problem) -> Bool? {
        guard let value = members.first(where: { $0.key == key })?.value else { return nil }
        switch value {
        case .null: return nil
        case .bool(let flag): return flag
        default: throw Problem.badRequest("\"\(key)\" must be a boolean, not \(value.typeName)")
        }
    }

    public func optionalStrings(_ key: String, maxCount: Int = 100, maxLength: Int = 256) throws(Problem) -> [String]? {
        guard let value = members.first(where: { $0.key == key })?.value else { return nil }
        if case .null = value { return nil }
        guard case .array(let items) = value, items.count <= maxCount else {
            throw Problem.badRequest("\"\(key)\" must be an array of at most \(maxCount) strings")
        }
        var strings: [String] = []
        for item in items {
            guard case .string(let text) = item, text.count <= maxLength else {
                throw Problem.badRequest("\"\(key)\" must hold strings of at most \(maxLength) characters")
            }
            strings.append(text)
        }
        return strings
    }

    /// True when the member is present and explicitly null (JSON merge patch: remove the value).
    public func isNull(_ key: String) -> Bool {
        if case .null? = members.first(where: { $0.key == key })?.value { return true }
        return false
    }
}
