package import Foundation

/// Half-open instant range [low, high): the FHIR search notion of a date's "range".
package struct FHIRDateRange: Sendable, Equatable {
    package var low: Date
    package var high: Date

    package init(low: Date, high: Date) {
        self.low = low
        self.high = high
    }
}

package enum FHIRDateKind: Sendable { case date, dateTime, instant }

/// FHIR R4 `date`, `dateTime` and `instant` values. Parsed by hand over the UTF-8 bytes (no regex, no
/// DateFormatter) because it runs on every write and every date search parameter.
package enum FHIRDate {
    /// The range a stored value covers, or nil when `text` is not a valid FHIR R4 value of that kind.
    /// The precision gives the range: a year, a month, a day, a second or 10^-digits s; dates without time are UTC.
    package static func range(of text: String, kind: FHIRDateKind) -> FHIRDateRange? {
        switch kind {
        case .date: parse(text, .date)
        case .dateTime: parse(text, .dateTime)
        case .instant: parse(text, .instant)
        }
    }

    /// A search value (after the prefix is removed): like dateTime, but a time without timezone is
    /// accepted (UTC), and `hh:mm` without seconds too.
    package static func searchRange(_ text: String) -> FHIRDateRange? {
        parse(text, .search)
    }

    /// `meta.lastUpdated` text for a Date: `yyyy-MM-ddTHH:mm:ss.SSSZ` in UTC.
    package static func instantText(_ date: Date) -> String {
        // The extra 0.001 ms absorbs the binary error of a Date built from a millisecond value
        // (x.123 s is stored as x.12299999…), so text → Date → text round-trips.
        let milliseconds = Int((date.timeIntervalSince1970 * 1000 + 0.001).rounded(.down))
        let (seconds, millisecond) = floorDivision(milliseconds, 1000)
        let (days, secondOfDay) = floorDivision(seconds, 86_400)
        let (year, month, day) = civil(fromDays: days)
        var out: [UInt8] = []
        out.reserveCapacity(24)
        appendDigits(year, width: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(month, width: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        appendDigits(day, width: 2, to: &out)
        out.append(UInt8(ascii: "T"))
        appendTime(secondOfDay, to: &out)
        out.append(UInt8(ascii: "."))
        appendDigits(millisecond, width: 3, to: &out)
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    /// The HTTP-date (RFC 9110 IMF-fixdate) for `Last-Modified`, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
    package static func httpDate(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let (days, secondOfDay) = floorDivision(seconds, 86_400)
        let (year, month, day) = civil(fromDays: days)
        // 1970-01-01 was a Thursday (index 4 with Sunday = 0).
        let weekday = floorDivision(days + 4, 7).remainder
        var out = Array(weekdayNames[weekday].utf8)
        out.append(contentsOf: ", ".utf8)
        appendDigits(day, width: 2, to: &out)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: monthNames[month - 1].utf8)
        out.append(UInt8(ascii: " "))
        appendDigits(year, width: 4, to: &out)
        out.append(UInt8(ascii: " "))
        appendTime(secondOfDay, to: &out)
        out.append(contentsOf: " GMT".utf8)
        return String(decoding: out, as: UTF8.self)
    }

    private static let weekdayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    // MARK: - Parsing

    /// What a kind of value allows beyond the date part.
    private struct Grammar: Sendable {
        var allowsTime: Bool
        var requiresTime: Bool
        var requiresSeconds: Bool
        var requiresZone: Bool

        static let date = Grammar(allowsTime: false, requiresTime: false, requiresSeconds: true, requiresZone: true)
        static let dateTime = Grammar(allowsTime: true, requiresTime: false, requiresSeconds: true, requiresZone: true)
        static let instant = Grammar(allowsTime: true, requiresTime: true, requiresSeconds: true, requiresZone: true)
        static let search = Grammar(allowsTime: true, requiresTime: false, requiresSeconds: false, requiresZone: false)
    }

    private static func parse(_ text: String, _ grammar: Grammar) -> FHIRDateRange? {
        if let result = text.utf8.withContiguousStorageIfAvailable({ parse($0, grammar) }) { return result }
        return Array(text.utf8).withUnsafeBufferPointer { parse($0, grammar) }
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>, _ grammar: Grammar) -> FHIRDateRange? {
        var cursor = Cursor(bytes: bytes)
        // R4 years are 0001-9999 (the regex excludes 0000).
        guard let year = cursor.number(digits: 4), (1...9999).contains(year) else { return nil }
        var month: Int?
        var day: Int?
        if cursor.skip(UInt8(ascii: "-")) {
            guard let value = cursor.number(digits: 2), (1...12).contains(value) else { return nil }
            month = value
            if cursor.skip(UInt8(ascii: "-")) {
                guard let dayValue = cursor.number(digits: 2), (1...daysInMonth(year: year, month: value)).contains(dayValue) else { return nil }
                day = dayValue
            }
        }
        if cursor.atEnd {
            guard !grammar.requiresTime else { return nil }
            return dateRange(year: year, month: month, day: day)
        }
        // A time needs a full date before it.
        guard grammar.allowsTime, let fullMonth = month, let fullDay = day, cursor.skip(UInt8(ascii: "T")) else { return nil }
        guard let hour = cursor.number(digits: 2), hour <= 23, cursor.skip(UInt8(ascii: ":")),
            let minute = cursor.number(digits: 2), minute <= 59
        else { return nil }
        var second: Int?
        var fractionDigits = 0
        var nanoseconds = 0
        if cursor.skip(UInt8(ascii: ":")) {
            // 60 is the leap second the R4 regex allows; it counts as the next minute's first second.
            guard let value = cursor.number(digits: 2), value <= 60 else { return nil }
            second = value
            if cursor.skip(UInt8(ascii: ".")) {
                while let digit = cursor.digit() {
                    // Beyond nanoseconds the range is only kept to 1 ns.
                    if fractionDigits < 9 { nanoseconds = nanoseconds * 10 + digit }
                    fractionDigits += 1
                }
                guard fractionDigits > 0 else { return nil }
            }
        } else if grammar.requiresSeconds {
            return nil
        }
        var offset: Int?
        if cursor.skip(UInt8(ascii: "Z")) {
            offset = 0
        } else if let sign = cursor.peek, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            cursor.position += 1
            // R4: offsets -14:00 … +14:00 (hours 00-13 with any minutes, or exactly 14:00).
            guard let hours = cursor.number(digits: 2), cursor.skip(UInt8(ascii: ":")), let minutes = cursor.number(digits: 2),
                (hours <= 13 && minutes <= 59) || (hours == 14 && minutes == 0)
            else { return nil }
            offset = (sign == UInt8(ascii: "-") ? -1 : 1) * (hours * 3600 + minutes * 60)
        }
        guard cursor.atEnd, offset != nil || !grammar.requiresZone else { return nil }

        let seconds = daysFromCivil(year: year, month: fullMonth, day: fullDay) * 86_400 + hour * 3600 + minute * 60 + (second ?? 0) - (offset ?? 0)
        guard second != nil else { return range(seconds, seconds + 60) }
        guard fractionDigits > 0 else { return range(seconds, seconds + 1) }
        for _ in min(fractionDigits, 9)..<9 { nanoseconds *= 10 }
        var width = 1
        for _ in min(fractionDigits, 9)..<9 { width *= 10 }
        let base = Double(seconds)
        return FHIRDateRange(
            low: Date(timeIntervalSince1970: base + Double(nanoseconds) / 1e9),
            high: Date(timeIntervalSince1970: base + Double(nanoseconds + width) / 1e9)
        )
    }

    private static func dateRange(year: Int, month: Int?, day: Int?) -> FHIRDateRange {
        guard let month else {
            return range(daysFromCivil(year: year, month: 1, day: 1) * 86_400, daysFromCivil(year: year + 1, month: 1, day: 1) * 86_400)
        }
        guard let day else {
            let next = month == 12 ? (year + 1, 1) : (year, month + 1)
            return range(daysFromCivil(year: year, month: month, day: 1) * 86_400, daysFromCivil(year: next.0, month: next.1, day: 1) * 86_400)
        }
        let start = daysFromCivil(year: year, month: month, day: day) * 86_400
        return range(start, start + 86_400)
    }

    private static func range(_ low: Int, _ high: Int) -> FHIRDateRange {
        FHIRDateRange(low: Date(timeIntervalSince1970: Double(low)), high: Date(timeIntervalSince1970: Double(high)))
    }

    private struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        var atEnd: Bool { position == bytes.count }
        var peek: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skip(_ byte: UInt8) -> Bool {
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        mutating func digit() -> Int? {
            guard position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") else { return nil }
            defer { position += 1 }
            return Int(bytes[position] - UInt8(ascii: "0"))
        }

        /// Exactly `count` decimal digits.
        mutating func number(digits count: Int) -> Int? {
            guard bytes.count - position >= count else { return nil }
            let start = position
            var value = 0
            for _ in 0..<count {
                guard let digit = digit() else {
                    position = start
                    return nil
                }
                value = value * 10 + digit
            }
            return value
        }
    }

    // MARK: - Calendar arithmetic (proleptic Gregorian, H. Hinnant's days-from-civil algorithms)

    package static func isLeapYear(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    package static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a civil date.
    package static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The civil date of a day count since 1970-01-01.
    package static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func floorDivision(_ value: Int, _ divisor: Int) -> (quotient: Int, remainder: Int) {
        let remainder = value % divisor
        return remainder < 0 ? (value / divisor - 1, remainder + divisor) : (value / divisor, remainder)
    }

    private static func appendTime(_ secondOfDay: Int, to out: inout [UInt8]) {
        appendDigits(secondOfDay / 3600, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay / 60 % 60, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay % 60, width: 2, to: &out)
    }

    private static func appendDigits(_ value: Int, width: Int, to out: inout [UInt8]) {
        var digits: [UInt8] = []
        var rest = abs(value)
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        if value < 0 { out.append(UInt8(ascii: "-")) }
        for _ in digits.count..<max(width, digits.count) { out.append(UInt8(ascii: "0")) }
        out.append(contentsOf: digits.reversed())
    }
}
