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

    /// `value` of the date parameter `name`, or a 400 that shows what a date search value is.
    package static func parse(_ value: String, parameter name: String) throws(Problem) -> (prefix: Prefix, range: FHIRDateRange) {
        guard let date = Self.value(value) else {
            throw Problem.badRequest(
                "\(name)=\(value) is not a date search value: an optional prefix (eq ne lt gt le ge sa eb ap) and a date such as 2026, 2026-05, 2026-05-01 or 2026-05-01T10:00:00Z"
            )
        }
        return date
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
            let (low, high) = approximately(range, now: now, &builder)
            return "(\(tl) < \(high) AND \(th) > \(low))"
        }
    }

    /// The same comparisons for a target that is one instant (a column of µs, e.g. an
    /// AuditEvent's `recorded`): the range [t, t + 1 µs), written so that the column stands
    /// alone on one side and its index serves every prefix.
    package static func condition(
        _ prefix: Prefix, _ range: FHIRDateRange, instant column: String, now: Date = Date(), _ builder: inout SQLBuilder
    ) -> String {
        func low() -> String { builder.bind(Micros.of(range.low)) }
        func high() -> String { builder.bind(Micros.of(range.high)) }
        switch prefix {
        case .eq: return "(\(column) >= \(low()) AND \(column) < \(high()))"
        case .ne: return "NOT (\(column) >= \(low()) AND \(column) < \(high()))"
        case .gt, .sa: return "(\(column) >= \(high()))"
        case .lt, .eb: return "(\(column) < \(low()))"
        case .ge: return "(\(column) >= \(low()))"
        case .le: return "(\(column) < \(high()))"
        case .ap:
            let (low, high) = approximately(range, now: now, &builder)
            return "(\(column) >= \(low) AND \(column) < \(high))"
        }
    }

    /// `ap`'s range: the value widened by a tenth of its distance from `now` (bound, low and high).
    private static func approximately(_ range: FHIRDateRange, now: Date, _ builder: inout SQLBuilder) -> (String, String) {
        let margin = max(abs(now.timeIntervalSince(range.low)), abs(now.timeIntervalSince(range.high))) / 10
        return (builder.bind(Micros.of(range.low.addingTimeInterval(-margin))), builder.bind(Micros.of(range.high.addingTimeInterval(margin))))
    }
}
