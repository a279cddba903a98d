public import Hummingbird

/// An `application/x-www-form-urlencoded` body (OAuth token requests, FHIR `_search` by POST).
/// Names keep their order and duplicates, because both OAuth and FHIR give duplicates meaning.
public struct FormBody: Sendable {
    public var fields: [(name: String, value: String)]

    public struct Malformed: Error, CustomStringConvertible {
        public var description: String
    }

    public init(parsing text: Substring) throws(Malformed) {
        fields = []
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.decode(parts[0])
            let value = parts.count > 1 ? try Self.decode(parts[1]) : ""
            fields.append((name, value))
        }
    }

    public func values(_ name: String) -> [String] { fields.filter { $0.name == name }.map(\.value) }

    /// Percent-decoding with `+` as space; invalid escapes or UTF-8 are an error, not guessed at.
    public static func decode(_ text: Substring) throws(Malformed) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else {
                    throw Malformed(description: "a % escape is not followed by two hex digits")
                }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        guard let string = String(validating: bytes, as: UTF8.self) else { throw Malformed(description: "the form is not valid UTF-8") }
        return string
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Request {
    /// True when the request says its body is a URL-encoded form.
    public var hasFormBody: Bool {
        guard let contentType = headers[.contentType], let mediaType = MediaType(from: contentType) else { return false }
        return mediaType.isType(.applicationUrlEncoded)
    }
}
