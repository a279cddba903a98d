import Foundation

/// One problem in a resource: `expression` is FHIRPath-like (`Patient.name[0].given[1]`), for OperationOutcome.issue.expression.
package struct ValidationIssue: Sendable, Equatable {
    package var expression: String
    package var message: String

    package init(expression: String, message: String) {
        self.expression = expression
        self.message = message
    }
}

/// The FHIR R4 datatypes records checks. Elements of other types are unknown to it and kept as sent.
package enum DataType: Sendable {
    case string, code, uri, id, boolean, positiveInt, unsignedInt, base64Binary, date, dateTime, instant
    /// A code bound to a required value set.
    case codeIn([String])
    /// Attachment.hash: base64 of a SHA-1 digest.
    case sha1Hash
    /// A code that is a media type (R4 binds Binary and Attachment `contentType` to BCP 13 with
    /// a required binding).
    case mimeType
    /// Narrative.div: XHTML, which in JSON is a string starting with `<div`.
    case xhtml
    case coding, codeableConcept, identifier, humanName, period, contactPoint, address, narrative, meta, attachment
    /// A Reference; with `targets`, its `reference` must be a relative `Type/id` of one of those types.
    case reference(targets: [String]?)
    /// A backbone element (DiagnosticReport.media, Consent.provision): its own elements, and its label for messages.
    case backbone(String, [ElementRule])

    package var label: String {
        switch self {
        case .string: "string"
        case .code, .codeIn, .mimeType: "code"
        case .uri: "uri"
        case .id: "id"
        case .boolean: "boolean"
        case .positiveInt: "positiveInt"
        case .unsignedInt: "unsignedInt"
        case .base64Binary, .sha1Hash: "base64Binary"
        case .date: "date"
        case .dateTime: "dateTime"
        case .instant: "instant"
        case .xhtml: "xhtml"
        case .coding: "Coding"
        case .codeableConcept: "CodeableConcept"
        case .identifier: "Identifier"
        case .humanName: "HumanName"
        case .period: "Period"
        case .contactPoint: "ContactPoint"
        case .address: "Address"
        case .narrative: "Narrative"
        case .meta: "Meta"
        case .attachment: "Attachment"
        case .reference: "Reference"
        case .backbone(let label, _): label
        }
    }
}

/// One known element of a resource or datatype.
package struct ElementRule: Sendable {
    package var name: String
    package var type: DataType
    package var repeats: Bool
    package var required: Bool

    package static func one(_ name: String, _ type: DataType, required: Bool = false) -> ElementRule {
        ElementRule(name: name, type: type, repeats: false, required: required)
    }

    package static func many(_ name: String, _ type: DataType) -> ElementRule {
        ElementRule(name: name, type: type, repeats: true, required: false)
    }
}

/// The elements of the complex datatypes (R4 datatypes.html, metadatatypes.html, narrative.html).
package enum DataTypeRules {
    /// Resource's elements (Binary is a Resource, most others DomainResources with `text`).
    package static let resource: [ElementRule] = [.one("id", .id), .one("meta", .meta), .one("implicitRules", .uri), .one("language", .code)]
    package static let domainResource: [ElementRule] = resource + [.one("text", .narrative)]
    package static let identifierUses = ["usual", "official", "temp", "secondary", "old"]
    package static let nameUses = ["usual", "official", "temp", "nickname", "anonymous", "old", "maiden"]
    package static let contactPointSystems = ["phone", "fax", "email", "pager", "url", "sms", "other"]
    package static let contactPointUses = ["home", "work", "temp", "old", "mobile"]
    package static let addressUses = ["home", "work", "temp", "old", "billing"]
    package static let addressTypes = ["postal", "physical", "both"]
    package static let narrativeStatuses = ["generated", "extensions", "additional", "empty"]

    package static let coding: [ElementRule] = [
        .one("system", .uri), .one("version", .string), .one("code", .code), .one("display", .string), .one("userSelected", .boolean),
    ]
    package static let codeableConcept: [ElementRule] = [.many("coding", .coding), .one("text", .string)]
    package static let identifier: [ElementRule] = [
        .one("use", .codeIn(identifierUses)), .one("type", .codeableConcept), .one("system", .uri), .one("value", .string),
        .one("period", .period), .one("assigner", .reference(targets: nil)),
    ]
    package static let humanName: [ElementRule] = [
        .one("use", .codeIn(nameUses)), .one("text", .string), .one("family", .string), .many("given", .string), .many("prefix", .string),
        .many("suffix", .string), .one("period", .period),
    ]
    package static let period: [ElementRule] = [.one("start", .dateTime), .one("end", .dateTime)]
    /// Without `reference`, whose shape depends on the allowed targets.
    package static let reference: [ElementRule] = [.one("type", .uri), .one("identifier", .identifier), .one("display", .string)]
    package static let attachment: [ElementRule] = [
        .one("contentType", .mimeType), .one("language", .code), .one("data", .base64Binary), .one("url", .uri), .one("size", .unsignedInt),
        .one("hash", .sha1Hash), .one("title", .string), .one("creation", .dateTime),
    ]
    package static let contactPoint: [ElementRule] = [
        .one("system", .codeIn(contactPointSystems)), .one("value", .string), .one("use", .codeIn(contactPointUses)), .one("rank", .positiveInt),
        .one("period", .period),
    ]
    package static let address: [ElementRule] = [
        .one("use", .codeIn(addressUses)), .one("type", .codeIn(addressTypes)), .one("text", .string), .many("line", .string),
        .one("city", .string), .one("district", .string), .one("state", .string), .one("postalCode", .string), .one("country", .string),
        .one("period", .period),
    ]
    package static let narrative: [ElementRule] = [.one("status", .codeIn(narrativeStatuses), required: true), .one("div", .xhtml, required: true)]
    package static let meta: [ElementRule] = [
        .one("versionId", .id), .one("lastUpdated", .instant), .one("source", .uri), .many("profile", .uri), .many("security", .coding),
        .many("tag", .coding),
    ]
}

/// A JSON object under check and its FHIRPath-like expression.
package struct ObjectNode {
    package var members: [(key: String, value: JSONValue)]
    package var path: String

    package init(members: [(key: String, value: JSONValue)], path: String) {
        self.members = members
        self.path = path
    }

    package subscript(name: String) -> JSONValue? { members.first { $0.key == name }?.value }
}

/// Collects validation issues while walking a resource.
package struct ValidationChecker {
    package private(set) var issues: [ValidationIssue] = []

    package init() {}

    package mutating func report(_ expression: String, _ message: String) {
        issues.append(ValidationIssue(expression: expression, message: message))
    }

    /// The JSON rules, `resourceType` and the known elements of a whole resource of type `root`.
    /// Returns the resource's node for further checks (nil when it is not an object).
    package mutating func checkResource(_ resource: JSONValue, as root: String, rules: [ElementRule]) -> ObjectNode? {
        guard case .object(let members) = resource else {
            report(root, "a resource must be a JSON object, not \(resource.describedType)")
            return nil
        }
        checkJSONShape(resource, at: root, name: root)
        let node = ObjectNode(members: members, path: root)
        switch node["resourceType"] {
        case nil:
            report(root + ".resourceType", "resourceType is required")
        case .string(let name)? where name == root:
            break
        case let other?:
            if !other.isBlank { report(root + ".resourceType", "resourceType must be \(root)") }
        }
        check(rules, in: node)
        return node
    }

    /// Checks the known elements of an object; others are left alone.
    package mutating func check(_ rules: [ElementRule], in node: ObjectNode) {
        for rule in rules {
            let path = node.path + "." + rule.name
            guard let value = node[rule.name] else {
                if rule.required { report(path, "\(rule.name) is required") }
                continue
            }
            guard rule.repeats else {
                check(value, at: path, name: rule.name, as: rule.type)
                continue
            }
            guard case .array(let items) = value else {
                if !value.isBlank { report(path, "\(rule.name) must be an array of \(rule.type.label), not \(value.describedType)") }
                continue
            }
            for (index, item) in items.enumerated() {
                check(item, at: "\(path)[\(index)]", name: rule.name, as: rule.type)
            }
        }
    }

    /// Checks one value of an element (an array item for repeating elements).
    package mutating func check(_ value: JSONValue, at path: String, name: String, as type: DataType) {
        // null, [], {} and "" were reported by the JSON shape pass; one issue per element is enough.
        guard !value.isBlank else { return }
        switch type {
        case .string:
            _ = string(value, at: path, name: name, as: type)
        case .code:
            if let text = string(value, at: path, name: name, as: type), !PrimitiveSyntax.isCode(text) {
                report(path, "\(name) must be a code without leading, trailing or repeated whitespace")
            }
        case .mimeType:
            if let text = string(value, at: path, name: name, as: type), !PrimitiveSyntax.isCode(text) || !PrimitiveSyntax.isMimeType(text) {
                report(path, "\(name) must be a media type such as application/pdf or text/plain; charset=utf-8")
            }
        case .codeIn(let codes):
            if let text = string(value, at: path, name: name, as: type), !codes.contains(text) {
                report(path, "\(name) must be one of \(codes.joined(separator: ", "))")
            }
        case .uri:
            if let text = string(value, at: path, name: name, as: type), !PrimitiveSyntax.isURI(text) {
                report(path, "\(name) must be a URI without whitespace")
            }
        case .id:
            if let text = string(value, at: path, name: name, as: type), !PrimitiveSyntax.isID(text) {
                report(path, "\(name) must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'")
            }
        case .boolean:
            if case .bool = value { return }
            report(path, "\(name) must be a boolean, not \(value.describedType)")
        case .positiveInt, .unsignedInt:
            var lowest = 0
            if case .positiveInt = type { lowest = 1 }
            guard case .number(let text) = value else {
                report(path, "\(name) must be an integer (JSON number), not \(value.describedType)")
                return
            }
            if let number = PrimitiveSyntax.integer(text), number >= lowest, number <= Int(Int32.max) { return }
            report(path, "\(name) must be an integer from \(lowest) to \(Int32.max)")
        case .base64Binary:
            if let text = string(value, at: path, name: name, as: type), PrimitiveSyntax.base64DecodedCount(text) == nil {
                report(path, "\(name) must be standard base64 with padding and no whitespace")
            }
        case .sha1Hash:
            if let text = string(value, at: path, name: name, as: type), PrimitiveSyntax.base64DecodedCount(text) != 20 {
                report(path, "\(name) must be the base64 of a 20-byte SHA-1 digest")
            }
        case .date:
            if let text = string(value, at: path, name: name, as: type), FHIRDate.range(of: text, kind: .date) == nil {
                report(path, "\(name) must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)")
            }
        case .dateTime:
            if let text = string(value, at: path, name: name, as: type), FHIRDate.range(of: text, kind: .dateTime) == nil {
                report(path, "\(name) must be a FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a timezone)")
            }
        case .instant:
            if let text = string(value, at: path, name: name, as: type), FHIRDate.range(of: text, kind: .instant) == nil {
                report(path, "\(name) must be a FHIR instant (YYYY-MM-DDThh:mm:ss, optional fraction, with a timezone)")
            }
        case .xhtml:
            if let text = string(value, at: path, name: name, as: type), !text.hasPrefix("<div") {
                report(path, "\(name) must be XHTML starting with <div")
            }
        case .reference(let targets):
            guard let node = object(value, at: path, name: name, as: type) else { return }
            checkReference(node, name: name, targets: targets)
        case .period:
            guard let node = object(value, at: path, name: name, as: type) else { return }
            check(DataTypeRules.period, in: node)
            // per-1: start <= end. Only a start wholly after the end fails: different precisions may overlap.
            if case .string(let startText)? = node["start"], case .string(let endText)? = node["end"],
                let start = FHIRDate.range(of: startText, kind: .dateTime), let end = FHIRDate.range(of: endText, kind: .dateTime),
                start.low >= end.high
            {
                report(path, "\(name) start must not be after its end")
            }
        case .attachment:
            guard let node = object(value, at: path, name: name, as: type) else { return }
            check(DataTypeRules.attachment, in: node)
            // att-1: inline data needs its content type.
            if node["data"] != nil, node["contentType"] == nil { report(path + ".contentType", "contentType is required when data is present") }
        case .contactPoint:
            guard let node = object(value, at: path, name: name, as: type) else { return }
            check(DataTypeRules.contactPoint, in: node)
            // cpt-2: a value needs its system.
            if node["value"] != nil, node["system"] == nil { report(path + ".system", "system is required when value is present") }
        case .backbone(_, let rules):
            guard let node = object(value, at: path, name: name, as: type) else { return }
            check(rules, in: node)
        case .coding, .codeableConcept, .identifier, .humanName, .address, .narrative, .meta:
            guard let node = object(value, at: path, name: name, as: type) else { return }
            check(Self.rules(of: type), in: node)
        }
    }

    private static func rules(of type: DataType) -> [ElementRule] {
        switch type {
        case .coding: DataTypeRules.coding
        case .codeableConcept: DataTypeRules.codeableConcept
        case .identifier: DataTypeRules.identifier
        case .humanName: DataTypeRules.humanName
        case .address: DataTypeRules.address
        case .narrative: DataTypeRules.narrative
        case .meta: DataTypeRules.meta
        default: []
        }
    }

    private mutating func checkReference(_ node: ObjectNode, name: String, targets: [String]?) {
        check(DataTypeRules.reference, in: node)
        let path = node.path + ".reference"
        guard let value = node["reference"], !value.isBlank else { return }
        guard case .string(let text) = value else {
            report(path, "reference must be a string, not \(value.describedType)")
            return
        }
        if let targets {
            guard let relative = PrimitiveSyntax.relativeReference(text), relative.version == nil, targets.contains(String(relative.type)) else {
                let shapes = targets.map { "\($0)/{id}" }
                let list = shapes.count > 1 ? shapes.dropLast().joined(separator: ", ") + " or " + shapes[shapes.count - 1] : shapes.joined()
                report(path, "\(name) reference must be \(list)")
                return
            }
        } else if !PrimitiveSyntax.isReference(text) {
            report(path, "reference must be Type/id, Type/id/_history/vid, an absolute http(s) URL, urn:uuid:, urn:oid: or #id")
        }
    }

    /// The text of a JSON string, or nil after reporting the mistyped value.
    private mutating func string(_ value: JSONValue, at path: String, name: String, as type: DataType) -> String? {
        if case .string(let text) = value { return text }
        var expected = "a \(type.label) (JSON string)"
        if case .string = type { expected = "a string" }
        report(path, "\(name) must be \(expected), not \(value.describedType)")
        return nil
    }

    private mutating func object(_ value: JSONValue, at path: String, name: String, as type: DataType) -> ObjectNode? {
        if case .object(let members) = value { return ObjectNode(members: members, path: path) }
        report(path, "\(name) must be a \(type.label) object, not \(value.describedType)")
        return nil
    }

    /// FHIR's JSON rules (json.html): no nulls, no empty arrays, objects or strings, no control
    /// characters in strings. A null is allowed
    /// only as a filler in an array that has a paired `_element` array (or is one), aligning extensions.
    package mutating func checkJSONShape(_ value: JSONValue, at path: String, name: String, nullFillersAllowed: Bool = false) {
        switch value {
        case .null:
            report(path, "\(name) must not be null")
        case .string(let text):
            if text.isEmpty { report(path, "\(name) must not be an empty string") }
            // R4 datatypes: strings hold no characters below U+0020 but tab, CR and LF.
            if text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" && $0 != "\r" && $0 != "\n" }) {
                report(path, "\(name) must not contain control characters (below U+0020, except tab, CR and LF)")
            }
        case .array(let items):
            if items.isEmpty { report(path, "\(name) must not be an empty array") }
            for (index, item) in items.enumerated() {
                if case .null = item, nullFillersAllowed { continue }
                checkJSONShape(item, at: "\(path)[\(index)]", name: name)
            }
        case .object(let members):
            if members.isEmpty { report(path, "\(name) must not be an empty object") }
            for member in members {
                var paired = false
                if case .array(let items) = member.value, items.contains(.null) {
                    let partner = member.key.hasPrefix("_") ? String(member.key.dropFirst()) : "_" + member.key
                    paired = members.contains { $0.key == partner }
                }
                checkJSONShape(member.value, at: path + "." + member.key, name: member.key, nullFillersAllowed: paired)
            }
        case .bool, .number:
            break
        }
    }
}

extension JSONValue {
    /// null, or an empty string, array or object: values FHIR JSON never allows.
    package var isBlank: Bool {
        switch self {
        case .null: true
        case .string(let text): text.isEmpty
        case .array(let items): items.isEmpty
        case .object(let members): members.isEmpty
        case .bool, .number: false
        }
    }

    /// The JSON type with an article, for messages ("a number", "an array").
    package var describedType: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Syntax of FHIR R4 primitive values (datatypes.html regexes), checked over UTF-8 bytes.
package enum PrimitiveSyntax {
    /// `[A-Za-z0-9\-\.]{1,64}`
    package static func isID(_ text: some StringProtocol) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }

    /// `[^\s]+(\s[^\s]+)*`: no leading, trailing or repeated whitespace.
    package static func isCode(_ text: String) -> Bool {
        var previousWasSpace = true
        for byte in text.utf8 {
            let space = isWhitespace(byte)
            if space && previousWasSpace { return false }
            previousWasSpace = space
        }
        return !previousWasSpace
    }

    /// An RFC 6838 `type/subtype` (restricted names: a letter or digit, then up to 126 of those
    /// and `!#$&-^_.+`), optionally followed by spaces, `;` and parameters in printable ASCII,
    /// so that it can be a `Content-Type` header as it is.
    package static func isMimeType(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var index = 0
        func restrictedName() -> Bool {
            let start = index
            guard index < bytes.count, isAlphanumeric(bytes[index]) else { return false }
            index += 1
            while index < bytes.count, index - start < 127, isAlphanumeric(bytes[index]) || mimeNameSymbols.contains(bytes[index]) { index += 1 }
            return true
        }
        guard restrictedName(), index < bytes.count, bytes[index] == UInt8(ascii: "/") else { return false }
        index += 1
        guard restrictedName() else { return false }
        guard index < bytes.count else { return true }
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
        guard index < bytes.count, bytes[index] == UInt8(ascii: ";") else { return false }
        return bytes[(index + 1)...].allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
    }

    private static let mimeNameSymbols = Set("!#$&-^_.+".utf8)

    /// `\S*`
    package static func isURI(_ text: String) -> Bool {
        !text.utf8.contains(where: isWhitespace)
    }

    /// A JSON integer (no fraction or exponent), or nil. Out-of-range values are nil too.
    package static func integer(_ text: String) -> Int? {
        guard !text.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }),
            !text.hasPrefix("-0")
        else { return nil }
        return Int(text)
    }

    /// The decoded length of standard padded base64 without whitespace, or nil when malformed.
    package static func base64DecodedCount(_ text: String) -> Int? {
        var count = 0
        var padding = 0
        for byte in text.utf8 {
            count += 1
            if byte == UInt8(ascii: "=") {
                padding += 1
            } else if padding > 0 || !(isAlphanumeric(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")) {
                return nil
            }
        }
        guard count % 4 == 0, padding <= 2 else { return nil }
        return count / 4 * 3 - padding
    }

    /// `Type/id` or `Type/id/_history/vid`.
    package static func relativeReference(_ text: String) -> (type: Substring, id: Substring, version: Substring?)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 || (parts.count == 4 && parts[2] == "_history" && isID(parts[3])) else { return nil }
        let type = parts[0].utf8
        guard let first = type.first, first >= UInt8(ascii: "A"), first <= UInt8(ascii: "Z"), type.allSatisfy(isLetter), isID(parts[1]) else {
            return nil
        }
        return (parts[0], parts[1], parts.count == 4 ? parts[3] : nil)
    }

    /// A relative reference, an absolute http(s) URL, `urn:uuid:`, `urn:oid:` or a `#local` one.
    package static func isReference(_ text: String) -> Bool {
        if relativeReference(text) != nil { return true }
        guard isURI(text) else { return false }
        for scheme in ["http://", "https://"] where text.hasPrefix(scheme) {
            // A host must follow the scheme.
            let rest = text.utf8.dropFirst(scheme.utf8.count)
            return rest.first.map { $0 != UInt8(ascii: "/") } ?? false
        }
        if text.hasPrefix("urn:uuid:") { return isUUID(text.utf8.dropFirst(9)) }
        if text.hasPrefix("urn:oid:") { return isOID(text.utf8.dropFirst(8)) }
        if text.hasPrefix("#") {
            // A bare "#" refers to the containing resource.
            let local = text.dropFirst()
            return local.isEmpty || isID(local)
        }
        return false
    }

    /// Lowercase 8-4-4-4-12 hex, as R4's uuid regex has it.
    private static func isUUID(_ bytes: Substring.UTF8View) -> Bool {
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else if !((byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))) {
                return false
            }
        }
        return true
    }

    /// `[0-2](\.(0|[1-9][0-9]*))+`
    private static func isOID(_ bytes: Substring.UTF8View) -> Bool {
        let arcs = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard arcs.count >= 2, arcs[0].count == 1, let root = arcs[0].first, root >= UInt8(ascii: "0"), root <= UInt8(ascii: "2") else {
            return false
        }
        return arcs.dropFirst().allSatisfy { arc in
            let digits = arc.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            return digits && !arc.isEmpty && (arc.count == 1 || arc.first != UInt8(ascii: "0"))
        }
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLetter(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }

    /// Regex `\s`: space, tab, LF, VT, FF, CR.
    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
    }
}
