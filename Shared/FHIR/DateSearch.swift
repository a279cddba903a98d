package import Foundation

/// Date search values (search.html, "date"): an optional prefix and a date whose precision
/// gives its range, compared in SQL against a target range of microsecond columns.
package enum DateSearch {
    package enum Prefix: String, CaseIterable, Sendable {
        case eq, ne, lt, gt, le, ge, sa, eb, ap
    }

    /// The prefix and range of `value`; nil when malformed or the prefix is not in `allowed`.
    package static func value(_ value: String, allowed: Set<Prefix> = Set(Prefix.allCases)) -> (prefix: Prefix, range: FHIRDateRange)? {
        var text = Substring(value)
        var prefix = Prefix.eq
        if text.count > 2, let first = text.first, first.isLetter {
            guard let known = Prefix(rawValue: String(text.prefix(2))), allowed.contains(known) else { return nil }
            prefix = known
            text = text.dropFirst(2)
        }
        guard let range = FHIRDate.searchRange(String(text)) else { return nil }
        return (prefix, range)
    }

    /// FHIR's comparison between the target range [tl, th) (SQL expressions) and the search
    /// range [sl, sh): `ge`/`le` match a target with any part at or after the search value's
    /// start / before its end (as HAPI and the search spec's examples read them), `gt`/`lt` any
    /// part beyond it; `sa`/`eb` a target wholly after / before it; `ap` one that overlaps it
    /// widened by a tenth of its distance from `now` (the spec's suggestion).
    package static func condition(
        _ prefix: Prefix, _ range: FHIRDateRange, low tl: String, high th: String, now: Date = Date(), _ builder: inout SQLBuilder
    ) -> String {
        func bounds() -> (String, String) { (builder.bind(Micros.of(range.low)), builder.bind(Micros.of(range.high))) }
        switch prefix {
        case .eq:
            let (sl, sh) = bounds()
            return "(\(tl) >= \(sl) AND \(th) <= \(sh))"
        case .ne:
            let (sl, sh) = bounds()
            return "NOT (\(tl) >= \(sl) AND \(th) <= \(sh))"
        case .gt: return "(\(th) > \(builder.bind(Micros.of(range.high))))"
        case .lt: return "(\(tl) < \(builder.bind(Micros.of(range.low))))"
        case .ge: return "(\(th) > \(builder.bind(Micros.of(range.low))))"
        case .le: return "(\(tl) < \(builder.bind(Micros.of(range.high))))"
        case .sa: return "(\(tl) >= \(builder.bind(Micros.of(range.high))))"
        case .eb: return "(\(th) <= \(builder.bind(Micros.of(range.low))))"
        case .ap:
            let margin = max(abs(now.timeIntervalSince(range.low)), abs(now.timeIntervalSince(range.high))) / 10
            let low = builder.bind(Micros.of(range.low.addingTimeInterval(-margin)))
            let high = builder.bind(Micros.of(range.high.addingTimeInterval(margin)))
            return "(\(tl) < \(high) AND \(th) > \(low))"
        }
    }
}
