package import Foundation

/// Instants as whole microseconds since 1970, the unit of every time column the FHIR services
/// order and search by (bigint, so paging cursors compare exactly); ±infinity are the extremes.
package enum Micros {
    package static let minimum = Int64.min
    package static let maximum = Int64.max

    package static func of(_ date: Date) -> Int64 {
        if date == .distantPast { return minimum }
        if date == .distantFuture { return maximum }
        return Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    package static func date(_ micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }
}
