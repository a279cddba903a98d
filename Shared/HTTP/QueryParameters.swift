public import Hummingbird

extension Request {
    /// A non-negative whole-number query parameter: nil when absent, 400 when malformed.
    public func queryInteger(_ name: String, in range: ClosedRange<Int64> = 0...Int64.max) throws(Problem) -> Int64? {
        guard let raw = uri.queryParameters[Substring(name)] else { return nil }
        guard !raw.isEmpty, raw.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let value = Int64(raw) else {
            throw Problem.badRequest("\(name) must be a whole number ≥ 0, got \"\(raw)\"")
        }
        guard range.contains(value) else {
            throw Problem.badRequest("\(name) must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    public func queryText(_ name: String) -> String? {
        uri.queryParameters[Substring(name)].map(String.init)
    }
}
