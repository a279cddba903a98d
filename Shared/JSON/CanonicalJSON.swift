/// RFC 8785 JSON Canonicalization Scheme over `JSONValue`.
public struct CanonicalizationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension JSONValue {
    /// The RFC 8785 bytes: members sorted by UTF-16 code units, numbers as ECMAScript prints the
    /// IEEE double they denote, minimal string escaping, no whitespace.
    ///
    /// With `exactIntegers`, an integer beyond ±2^53 (which a double would silently round) is an
    /// error instead, as the Python rfc8785 package does: a ledger entry must hash what was sent.
    public func canonicalized(exactIntegers: Bool = false) throws(CanonicalizationError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        try writeCanonical(into: &out, exactIntegers: exactIntegers)
        return out
    }

    private func writeCanonical(into out: inout [UInt8], exactIntegers: Bool) throws(CanonicalizationError) {
        switch self {
        case .null, .bool, .string: write(into: &out)
        case .number(let text):
            guard let double = Double(text), double.isFinite else {
                throw CanonicalizationError(message: "number \(text) is outside the IEEE 754 double range")
            }
            if exactIntegers, !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), abs(double) > 9_007_199_254_740_991 {
                throw CanonicalizationError(message: "integer \(text) is beyond ±2^53-1 and would lose precision")
            }
            out.append(contentsOf: ECMAScriptNumber.format(double).utf8)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                try element.writeCanonical(into: &out, exactIntegers: exactIntegers)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            let sorted = members.sorted { $0.key.utf16.lexicographicallyPrecedes($1.key.utf16) }
            for (i, member) in sorted.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                try member.value.writeCanonical(into: &out, exactIntegers: exactIntegers)
            }
            out.append(UInt8(ascii: "}"))
        }
    }
}

/// ECMAScript `Number.prototype.toString()` (ECMA-262 Number::toString) for finite doubles, as
/// RFC 8785 section 3.2.2.3 requires. The shortest round-trip digits come from Swift's own
/// `description` (shortest, closest, like ECMAScript); only the layout is ECMAScript's.
public enum ECMAScriptNumber {
    public static func format(_ value: Double) -> String {
        if value == 0 { return "0" }
        if value < 0 { return "-" + format(-value) }
        let (digits, n) = shortestDigits(value)
        let k = digits.count
        if k <= n && n <= 21 {
            return String(digits) + String(repeating: "0", count: n - k)
        }
        if 0 < n && n <= 21 {
            return String(digits.prefix(n)) + "." + String(digits.dropFirst(n))
        }
        if -6 < n && n <= 0 {
            return "0." + String(repeating: "0", count: -n) + String(digits)
        }
        let exponent = n - 1
        let sign = exponent < 0 ? "-" : "+"
        let mantissa = k == 1 ? String(digits) : String(digits.prefix(1)) + "." + String(digits.dropFirst())
        return mantissa + "e" + sign + String(abs(exponent))
    }

    /// Digits s (no leading or trailing zeros) and exponent n with value = 0.s × 10^n.
    static func shortestDigits(_ value: Double) -> (digits: [Character], n: Int) {
        let text = value.description  // e.g. "1e-07", "0.001", "1.2345e+20", "100.0"
        let parts = text.split(separator: "e", maxSplits: 1)
        let exponent = parts.count == 2 ? Int(parts[1])! : 0
        let mantissa = parts[0]
        let integerPart = mantissa.split(separator: ".", omittingEmptySubsequences: false)[0]
        var digits = Array(mantissa.filter { $0 != "." })
        let leadingZeros = digits.prefix { $0 == "0" }.count
        digits.removeFirst(leadingZeros)
        while digits.last == "0" { digits.removeLast() }
        return (digits, integerPart.count + exponent - leadingZeros)
    }
}
