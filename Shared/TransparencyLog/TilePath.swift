/// C2SP tlog-tiles paths: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, where N is split
/// into 3-digit elements, all but the last prefixed with "x" (1234067 → x001/x234/067).
public struct TilePath: Sendable, Equatable {
    public static let height = 8
    public static let width = 1 << height

    /// nil for entry bundles.
    public var level: Int?
    public var index: Int64
    /// 1...255 for partial tiles, nil for full ones.
    public var partialWidth: Int?

    public init(level: Int?, index: Int64, partialWidth: Int? = nil) {
        self.level = level
        self.index = index
        self.partialWidth = partialWidth
    }

    public var count: Int { partialWidth ?? TilePath.width }

    public static func encode(index: Int64) -> String {
        var elements: [String] = []
        var n = index
        repeat {
            let part = String(n % 1000)
            elements.insert(String(repeating: "0", count: 3 - part.count) + part, at: 0)
            n /= 1000
        } while n > 0
        return elements.enumerated().map { $0.offset < elements.count - 1 ? "x" + $0.element : $0.element }.joined(separator: "/")
    }

    /// The path below `tile/`.
    public var path: String {
        let head = level.map(String.init) ?? "entries"
        let tail = partialWidth.map { ".p/\($0)" } ?? ""
        return "\(head)/\(TilePath.encode(index: index))\(tail)"
    }

    /// Parses the path components after `tile/`; nil when they are not a canonical tile path.
    public init?(components: [Substring]) {
        guard components.count >= 2 else { return nil }
        if components[0] == "entries" {
            level = nil
        } else {
            guard let l = Int(components[0]), (0...63).contains(l), String(l) == components[0] else { return nil }
            level = l
        }
        var elements = Array(components.dropFirst())
        partialWidth = nil
        if elements.count >= 2, elements[elements.count - 2].hasSuffix(".p") {
            guard let w = Int(elements[elements.count - 1]), (1..<TilePath.width).contains(w), String(w) == elements.last! else {
                return nil
            }
            partialWidth = w
            elements.removeLast()
            elements[elements.count - 1] = elements[elements.count - 1].dropLast(2)
        }
        var n: Int64 = 0
        for (i, element) in elements.enumerated() {
            let isLast = i == elements.count - 1
            var digits = element
            if !isLast {
                guard digits.first == "x" else { return nil }
                digits = digits.dropFirst()
            }
            guard digits.count == 3, digits.allSatisfy(\.isASCII), let value = Int64(digits), value >= 0 else { return nil }
            let (product, overflow) = n.multipliedReportingOverflow(by: 1000)
            guard !overflow else { return nil }
            n = product + value
        }
        index = n
        // Reject non-canonical spellings (x000 prefixes, wrong element counts).
        guard TilePath.encode(index: n) == elements.joined(separator: "/") else { return nil }
    }
}
