import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import TestSupport
import Testing

@Suite struct SearchTests {
    @Test func parametersFollowFHIRSemantics() async throws {
        let fixture = try await ConsentFixture.make("search")
        try await fixture.app().test(.router) { client in
            let reception = try await fixture.receptionist()
            let open = try await client.createConsent(try Sample.consent(), token: reception)
            let year = try await client.createConsent(
                try Sample.consent(patient: "Patient/p2", start: "2026-01-01", end: "2026-12-31"), token: reception)
            let may = try await client.createConsent(
                try Sample.consent(actor: "Organization/o1", status: "inactive", start: "2026-05-01T00:00:00Z", end: "2026-05-31T23:59:59Z"),
                token: reception)
            let from2027 = try await client.createConsent(try Sample.consent(actor: "Practitioner/d2", start: "2027-01-01"), token: reception)
            let until2025 = try await client.createConsent(
                try Sample.consent(patient: "Patient/p2", actor: "Practitioner/d2", end: "2025-06-30"), token: reception)

            func ids(_ query: String) async throws -> Set<String> {
                let answer = try await client.send(.get, "/fhir/Consent?\(query)", token: reception)
                #expect(answer.status == .ok, "\(query): \(answer.status) \(answer.text)")
                return Set(answer.ids)
            }
            #expect(try await ids("patient=Patient/p1") == [open, may, from2027])
            #expect(try await ids("patient=p2") == [year, until2025])
            #expect(try await ids("patient=\(ConsentFixture.base)/Patient/p2") == [year, until2025])
            #expect(try await ids("patient=Patient/p1,Patient/p2").count == 5)
            #expect(try await ids("actor=Organization/o1") == [may])
            #expect(try await ids("actor=Practitioner/d2&patient=Patient/p2") == [until2025])
            #expect(try await ids("status=inactive") == [may])
            #expect(try await ids("status=active,inactive").count == 5)
            #expect(try await ids("status=http://hl7.org/fhir/consent-state-codes|inactive") == [may])
            #expect(try await ids("status=http://other.org|inactive") == [])
            #expect(try await ids("_id=\(open),\(may)") == [open, may])
            // Periods: open ends are infinite; prefixes compare ranges.
            // eq: the target period lies within the value's range.
            #expect(try await ids("period=2026") == [year, may])
            #expect(try await ids("period=eq2026-05") == [may])
            #expect(try await ids("period=ne2026-05") == [open, year, from2027, until2025])
            #expect(try await ids("period=gt2026-12-31") == [open, from2027])
            #expect(try await ids("period=lt2026-01-01") == [open, until2025])
            #expect(try await ids("period=ge2027-01-01") == [open, from2027])
            #expect(try await ids("period=le2025-12-31") == [open, until2025])
            #expect(try await ids("period=sa2026-12-31") == [from2027])
            #expect(try await ids("period=eb2026-01-01") == [until2025])
            // ap: overlaps the value widened by a tenth of its distance from now.
            let may15 = try #require(FHIRDate.searchRange("2026-05-15"))
            let margin = max(abs(Date().timeIntervalSince(may15.low)), abs(Date().timeIntervalSince(may15.high))) / 10
            let near = [
                (until2025, "2025-07-01T00:00:00Z" > FHIRDate.instantText(may15.low.addingTimeInterval(-margin))),
                (from2027, "2027-01-01T00:00:00Z" < FHIRDate.instantText(may15.high.addingTimeInterval(margin))),
            ].filter(\.1).map(\.0)
            #expect(try await ids("period=ap2026-05-15") == Set([open, year, may] + near))
            // Repeated parameters AND: in force on 2026-12-15.
            #expect(try await ids("period=ge2026-12-15&period=le2026-12-15") == [open, year])
            #expect(try await ids("_lastUpdated=gt2000-01-01").count == 5)
            #expect(try await ids("_lastUpdated=lt2000-01-01") == [])

            for bad in [
                "period=2026-13", "period=xx2026", "actor=d1", "actor=Patient/p1", "patient=Practitioner/d1", "_count=-1", "_sort=status",
                "_total=maybe",
                "status:not=active", "_cursor=bogus", "_lastUpdated=yesterday",
            ] {
                let answer = try await client.send(.get, "/fhir/Consent?\(bad)", token: reception)
                #expect(answer.status == .badRequest, "\(bad): \(answer.status)")
                #expect(answer.json?["resourceType"]?.stringValue == "OperationOutcome", "\(bad)")
            }

            // Unknown parameters: ignored with a warning (lenient), or a 400 (strict).
            let lenient = try await client.send(.get, "/fhir/Consent?patient=Patient/p1&colour=blue", token: reception)
            #expect(Set(lenient.ids) == [open, may, from2027] && lenient.total == 3)
            let outcome = (lenient.json?["entry"]?.arrayValue ?? []).first { $0["search"]?["mode"]?.stringValue == "outcome" }
            #expect(outcome?["resource"]?["issue"]?.arrayValue?.first?["severity"]?.stringValue == "warning")
            #expect(outcome?["resource"]?["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue?.contains("colour") == true)
            #expect(lenient.link("self") == "\(ConsentFixture.base)/Consent?patient=Patient/p1")
            let strict = try await client.send(
                .get, "/fhir/Consent?patient=Patient/p1&colour=blue", token: reception, headers: [HTTPField.Name("Prefer")!: "handling=strict"])
            #expect(strict.status == .badRequest)

            // POST _search takes the same parameters as a form.
            let posted = try await client.send(
                .post, "/fhir/Consent/_search?status=active", token: reception, body: "patient=Patient%2Fp2",
                headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(posted.status == .ok && Set(posted.ids) == [year, until2025])
            #expect(try await client.send(.post, "/fhir/Consent/_search", token: reception, body: "{}").status == .unsupportedMediaType)
        }
    }

    @Test func pagesAndTotals() async throws {
        let fixture = try await ConsentFixture.make("paging")
        try await fixture.app().test(.router) { client in
            let patient = try await fixture.patient()
            var created: Set<String> = []
            for _ in 0..<7 { created.insert(try await client.createConsent(try Sample.consent(), token: patient)) }
            // Newest first, ties (the same millisecond) by id.
            let newestFirst = try await client.send(.get, "/fhir/Consent?_count=100", token: patient).ids
            #expect(Set(newestFirst) == created && newestFirst.count == 7)

            let first = try await client.send(.get, "/fhir/Consent?_count=3", token: patient)
            #expect(first.ids == Array(newestFirst[0..<3]) && first.total == 7 && first.link("previous") == nil)
            var pages = [first.ids]
            var next = first.link("next")
            var last = first
            while let url = next {
                last = try await client.send(.get, String(url.dropFirst("http://consent.test".count)), token: patient)
                #expect(last.total == 7)
                pages.append(last.ids)
                next = last.link("next")
            }
            #expect(pages.flatMap { $0 } == newestFirst && pages.count == 3)
            let previous = try #require(last.link("previous"))
            let back = try await client.send(.get, String(previous.dropFirst("http://consent.test".count)), token: patient)
            #expect(back.ids == Array(newestFirst[3..<6]))

            let ascending = try await client.send(.get, "/fhir/Consent?_sort=_lastUpdated&_count=2", token: patient)
            #expect(ascending.ids == Array(newestFirst.reversed()[0..<2]))
            let countOnly = try await client.send(.get, "/fhir/Consent?_count=0", token: patient)
            #expect(countOnly.total == 7 && countOnly.ids.isEmpty && countOnly.json?["entry"] == nil)
            let noTotal = try await client.send(.get, "/fhir/Consent?_total=none&_count=2", token: patient)
            #expect(noTotal.total == nil && noTotal.ids.count == 2)
            let capped = try await client.send(.get, "/fhir/Consent?_count=5000", token: patient)
            #expect(capped.ids.count == 7 && capped.link("self")?.contains("_count=100") == true)
            let defaultCount = try await client.send(.get, "/fhir/Consent", token: patient)
            #expect(defaultCount.json?["type"]?.stringValue == "searchset" && defaultCount.ids.count == 7)
        }
    }
}
