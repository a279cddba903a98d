@testable import MedLedgerCore
import Foundation
import Testing

@Suite struct FHIRDateTests {
    /// Epoch seconds of a range, for readable expectations.
    func seconds(_ range: FHIRDateRange?) -> [Double]? {
        range.map { [$0.low.timeIntervalSince1970, $0.high.timeIntervalSince1970] }
    }

    func expectClose(_ range: FHIRDateRange?, _ low: Double, _ high: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let range else {
            Issue.record("no range", sourceLocation: sourceLocation)
            return
        }
        #expect(abs(range.low.timeIntervalSince1970 - low) < 1e-6, sourceLocation: sourceLocation)
        #expect(abs(range.high.timeIntervalSince1970 - high) < 1e-6, sourceLocation: sourceLocation)
    }

    // MARK: Validity per kind

    @Test(arguments: ["2024", "2024-05", "2024-05-01", "2024-02-29", "2000-02-29", "0001", "0001-01-01", "9999-12-31", "1970-01-31"])
    func validDates(_ text: String) {
        #expect(FHIRDate.range(of: text, kind: .date) != nil)
        // Every date is also a dateTime.
        #expect(FHIRDate.range(of: text, kind: .dateTime) != nil)
    }

    @Test(arguments: [
        "2023-02-29", "1900-02-29", "2024-04-31", "2024-05-32", "2024-13", "2024-00", "2024-05-00", "0000", "0000-01-01", "24", "20245",
        "2024-5-01", "2024-05-1", "2024-", "2024-05-", " 2024", "2024 ", "", "2024-05-01T10:20:30Z", "２０２４", "abcd", "2024/05/01",
    ])
    func invalidDates(_ text: String) {
        #expect(FHIRDate.range(of: text, kind: .date) == nil)
    }

    @Test(arguments: [
        "2024", "2024-05", "2024-05-01", "2024-05-01T10:20:30Z", "2024-05-01T10:20:30.123+02:00", "2024-05-01T00:00:00-05:30",
        "2024-05-01T23:59:59+14:00", "2024-05-01T23:59:59-13:59", "2024-12-31T23:59:60Z", "2024-02-29T12:00:00.1Z",
        "2024-05-01T10:20:30.123456789012Z",
    ])
    func validDateTimes(_ text: String) {
        #expect(FHIRDate.range(of: text, kind: .dateTime) != nil)
    }

    @Test(arguments: [
        "2024-05-01T10:20:30",  // a time needs a timezone
        "2024-05-01T24:00:00Z", "2024-05-01T10:60:00Z", "2024-05-01T10:20:61Z", "2024-05-01T10:20Z", "2024-05-01T10Z", "2024-05T10:20:30Z",
        "2024T10:20:30Z", "2024-05-01T", "2024-05-01T10:20:30.Z", "2024-05-01T10:20:30+15:00", "2024-05-01T10:20:30+14:30",
        "2024-05-01T10:20:30+0200",
        "2024-05-01T10:20:30+02", "2024-05-01 10:20:30Z", "2024-05-01t10:20:30Z", "2024-05-01T10:20:30z", "2023-02-29T00:00:00Z",
        "2024-05-01T10:20:30ZZ", "2024-05-01T1:20:30Z",
    ])
    func invalidDateTimes(_ text: String) {
        #expect(FHIRDate.range(of: text, kind: .dateTime) == nil)
    }

    @Test(arguments: ["2024-05-01T10:20:30Z", "2024-05-01T10:20:30.123456Z", "2024-05-01T10:20:30-05:00", "2024-02-29T00:00:00.000+01:00"])
    func validInstants(_ text: String) {
        #expect(FHIRDate.range(of: text, kind: .instant) != nil)
    }

    @Test(arguments: [
        "2024-05-01T10:20Z",  // seconds are required
        "2024-05-01T10:20:30",  // so is the timezone
        "2024-05-01", "2024-05", "2024", "2024-05-01T24:00:00Z", "2023-02-29T10:20:30Z",
    ])
    func invalidInstants(_ text: String) {
        #expect(FHIRDate.range(of: text, kind: .instant) == nil)
    }

    // MARK: Ranges

    @Test func rangesFollowPrecision() {
        #expect(seconds(FHIRDate.range(of: "2024", kind: .date)) == [1_704_067_200, 1_735_689_600])
        #expect(seconds(FHIRDate.range(of: "2024-02", kind: .dateTime)) == [1_706_745_600, 1_709_251_200])
        // December rolls into the next year.
        #expect(seconds(FHIRDate.range(of: "2024-12", kind: .date)) == [1_733_011_200, 1_735_689_600])
        #expect(seconds(FHIRDate.range(of: "2024-02-29", kind: .date)) == [1_709_164_800, 1_709_251_200])
        #expect(seconds(FHIRDate.range(of: "2024-05-01T10:20:30Z", kind: .dateTime)) == [1_714_558_830, 1_714_558_831])
        #expect(seconds(FHIRDate.range(of: "2024-05-01T10:20:30Z", kind: .instant)) == [1_714_558_830, 1_714_558_831])
        #expect(seconds(FHIRDate.range(of: "0001-01-01", kind: .date)) == [-62_135_596_800, -62_135_510_400])
        #expect(seconds(FHIRDate.range(of: "9999", kind: .date))?.first == 253_370_764_800)
        #expect(seconds(FHIRDate.range(of: "9999-12-31", kind: .date)) == [253_402_214_400, 253_402_300_800])
    }

    @Test func timezoneOffsetsShiftToUTC() {
        #expect(seconds(FHIRDate.range(of: "2024-05-01T10:20:30+02:00", kind: .dateTime)) == [1_714_551_630, 1_714_551_631])
        #expect(seconds(FHIRDate.range(of: "2024-05-01T10:20:30-05:30", kind: .instant)) == [1_714_578_630, 1_714_578_631])
        #expect(FHIRDate.range(of: "2024-05-01T12:20:30+02:00", kind: .dateTime) == FHIRDate.range(of: "2024-05-01T10:20:30Z", kind: .dateTime))
        // A timezone can move the instant into the previous day.
        #expect(seconds(FHIRDate.range(of: "2024-01-01T00:30:00+01:00", kind: .instant))?.first == 1_704_065_400)
    }

    @Test func fractionsNarrowTheRange() {
        expectClose(FHIRDate.range(of: "2024-05-01T10:20:30.5Z", kind: .dateTime), 1_714_558_830.5, 1_714_558_830.6)
        expectClose(FHIRDate.range(of: "2024-05-01T10:20:30.123Z", kind: .instant), 1_714_558_830.123, 1_714_558_830.124)
        expectClose(FHIRDate.range(of: "2024-05-01T10:20:30.120+02:00", kind: .instant), 1_714_551_630.120, 1_714_551_630.121)
        expectClose(FHIRDate.range(of: "2024-05-01T10:20:30.000001Z", kind: .instant), 1_714_558_830.000001, 1_714_558_830.000002)
    }

    @Test func searchValuesMayOmitTimezoneAndSeconds() {
        #expect(seconds(FHIRDate.searchRange("2024-05-01T10:20:30")) == [1_714_558_830, 1_714_558_831])
        #expect(seconds(FHIRDate.searchRange("2024-05-01T10:20")) == [1_714_558_800, 1_714_558_860])
        #expect(seconds(FHIRDate.searchRange("2024-05-01T10:20+01:00")) == [1_714_555_200, 1_714_555_260])
        #expect(seconds(FHIRDate.searchRange("2024-05-01T10:20:30Z")) == [1_714_558_830, 1_714_558_831])
        #expect(seconds(FHIRDate.searchRange("2024")) == [1_704_067_200, 1_735_689_600])
        #expect(seconds(FHIRDate.searchRange("2024-02-29")) == [1_709_164_800, 1_709_251_200])
        expectClose(FHIRDate.searchRange("2024-05-01T10:20:30.25"), 1_714_558_830.25, 1_714_558_830.26)
    }

    @Test(arguments: ["2024-05-01T10", "2024-05-01T10:", "2024-05-01T25:00", "2024-05-01T10:20:", "2023-02-29", "ge2024", "2024-05-01T10:20.5", ""])
    func invalidSearchValues(_ text: String) {
        #expect(FHIRDate.searchRange(text) == nil)
    }

    // MARK: Formatting

    @Test func instantTextIsUTCWithMilliseconds() {
        #expect(FHIRDate.instantText(Date(timeIntervalSince1970: 1_714_558_830.123)) == "2024-05-01T10:20:30.123Z")
        #expect(FHIRDate.instantText(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(FHIRDate.instantText(Date(timeIntervalSince1970: 1_704_067_199.9996)) == "2023-12-31T23:59:59.999Z")
        #expect(FHIRDate.instantText(Date(timeIntervalSince1970: -1.5)) == "1969-12-31T23:59:58.500Z")
        #expect(FHIRDate.instantText(Date(timeIntervalSince1970: 1_709_164_800)) == "2024-02-29T00:00:00.000Z")
    }

    @Test(arguments: ["2024-05-01T10:20:30.123Z", "2024-02-29T23:59:59.999Z", "1999-12-31T00:00:00.001Z", "2038-01-19T03:14:08.007Z"])
    func instantTextRoundTrips(_ text: String) throws {
        let range = try #require(FHIRDate.range(of: text, kind: .instant))
        #expect(FHIRDate.instantText(range.low) == text)
    }

    @Test func httpDateIsIMFFixdate() {
        #expect(FHIRDate.httpDate(Date(timeIntervalSince1970: 784_111_777)) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(FHIRDate.httpDate(Date(timeIntervalSince1970: 0)) == "Thu, 01 Jan 1970 00:00:00 GMT")
        // Fractions are dropped, not rounded up.
        #expect(FHIRDate.httpDate(Date(timeIntervalSince1970: 1_709_164_800 + 13 * 3600 + 5.9)) == "Thu, 29 Feb 2024 13:00:05 GMT")
    }

    @Test func civilDaysRoundTripAcrossSupportedYears() {
        let first = FHIRDate.daysFromCivil(year: 1, month: 1, day: 1)
        let last = FHIRDate.daysFromCivil(year: 9999, month: 12, day: 31)
        #expect(first == -719_162)
        #expect(last == 2_932_896)
        let mismatches = stride(from: first, through: last, by: 97).filter { days in
            let date = FHIRDate.civil(fromDays: days)
            return FHIRDate.daysFromCivil(year: date.year, month: date.month, day: date.day) != days
        }
        #expect(mismatches.isEmpty)
        let leapDay = FHIRDate.civil(fromDays: 19_782)
        #expect(leapDay.year == 2024 && leapDay.month == 2 && leapDay.day == 29)
    }
}
