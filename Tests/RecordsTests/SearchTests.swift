import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MedLedgerCore
import TestSupport
import Testing

@Suite struct SearchTests {
    @Test func parametersFollowFHIRSemantics() async throws {
        let fixture = try await RecordsFixture.make("search")
        try await fixture.app().test(.router) { client in
            let admin = try await fixture.token(.admin)
            let reception = try await fixture.token(.receptionist)
            let gp = try await client.create("Practitioner", Sample.practitioner(), token: admin)
            let zoe = try await client.create("Patient", Sample.patient("Ångström", gp: gp, identifier: "A1"), token: reception)
            let other = try await client.create("Patient", Sample.patient("Angel", identifier: "B2"), token: reception)
            let tech = try await fixture.token(.technologist, fhirUser: "Practitioner/t")
            let lab = try await client.create("DiagnosticReport", Sample.report(patient: zoe, code: "111-1"), token: tech)
            let later = Sample.report(patient: other, code: "222-2").replacingOccurrences(of: "2024-05-01T10:00:00Z", with: "2025-02-03")
            let rad = try await client.create("DiagnosticReport", later, token: tech)

            func ids(_ query: String) async throws -> Set<String> {
                let answer = try await client.fhir(.get, query, token: query.contains("Patient?") ? reception : tech)
                #expect(answer.status == .ok, "\(query) answered \(answer.status): \(answer.text)")
                return Set(answer.entryIDs)
            }
            // strings: accent- and case-insensitive starts-with; :exact; :contains
            #expect(try await ids("/fhir/Patient?family=angstrom") == [zoe])
            #expect(try await ids("/fhir/Patient?name=ang") == [zoe, other])
            #expect(try await ids("/fhir/Patient?family:exact=Angel") == [other])
            #expect(try await ids("/fhir/Patient?family:exact=angel") == [])
            #expect(try await ids("/fhir/Patient?family:contains=gstr") == [zoe])
            // tokens: system|code, code, system|, |code; OR with commas; AND by repetition
            #expect(try await ids("/fhir/Patient?identifier=urn:mrn|A1") == [zoe])
            #expect(try await ids("/fhir/Patient?identifier=A1,B2") == [zoe, other])
            #expect(try await ids("/fhir/Patient?identifier=urn:mrn|") == [zoe, other])
            #expect(try await ids("/fhir/Patient?identifier=|A1") == [])
            #expect(try await ids("/fhir/DiagnosticReport?code=http://loinc.org|111-1") == [lab])
            #expect(try await ids("/fhir/DiagnosticReport?status=preliminary&code=222-2") == [rad])
            #expect(try await ids("/fhir/DiagnosticReport?category=LAB") == [lab, rad])
            // references
            #expect(try await ids("/fhir/DiagnosticReport?patient=\(zoe)") == [lab])
            #expect(try await ids("/fhir/DiagnosticReport?subject=Patient/\(other)") == [rad])
            #expect(try await ids("/fhir/DiagnosticReport?patient=http://records.test/fhir/Patient/\(zoe)") == [lab])
            #expect(try await ids("/fhir/Patient?general-practitioner=\(gp)") == [zoe])
            // dates: partial values and prefixes
            #expect(try await ids("/fhir/DiagnosticReport?date=2024") == [lab])
            #expect(try await ids("/fhir/DiagnosticReport?date=2024-05-01") == [lab])
            #expect(try await ids("/fhir/DiagnosticReport?date=gt2024-12") == [rad])
            #expect(try await ids("/fhir/DiagnosticReport?date=ge2024-05-01&date=lt2025") == [lab])
            #expect(try await ids("/fhir/DiagnosticReport?date=ne2024") == [rad])
            #expect(try await ids("/fhir/Patient?birthdate=le1980-05-17") == [zoe, other])
            // sorting, includes, counts
            let sorted = try await client.fhir(.get, "/fhir/DiagnosticReport?_sort=date", token: tech)
            #expect(sorted.entryIDs == [lab, rad])
            let descending = try await client.fhir(.get, "/fhir/DiagnosticReport?_sort=-date", token: tech)
            #expect(descending.entryIDs == [rad, lab])
            let included = try await client.fhir(.get, "/fhir/DiagnosticReport?code=111-1&_include=DiagnosticReport:patient", token: tech)
            #expect(included.entryIDs == [lab, zoe])
            let count = try await client.fhir(.get, "/fhir/DiagnosticReport?_summary=count", token: tech)
            #expect(count.total == 2 && count.entryIDs.isEmpty)
            // unknown parameters: ignored (and left out of self), or refused under handling=strict
            let lenient = try await client.fhir(.get, "/fhir/Patient?foo=bar&family=angel", token: reception)
            #expect(lenient.entryIDs == [other])
            #expect(lenient.json?["link"]?.arrayValue?.first?["url"]?.stringValue == "http://records.test/fhir/Patient?family=angel")
            let strict = try await client.fhir(.get, "/fhir/Patient?foo=bar", token: reception, headers: [HTTPField.Name("Prefer")!: "handling=strict"])
            #expect(strict.status == .badRequest)
            for bad in ["date=2024-13", "date=xx2024", "_count=-1", "_sort=name", "_cursor=zzz"] {
                #expect(try await client.fhir(.get, "/fhir/DiagnosticReport?\(bad)", token: tech).status == .badRequest, "\(bad)")
            }
            // POST _search with a form body
            let form = try await client.fhir(
                .post, "/fhir/Patient/_search", token: reception, body: "family=angel",
                headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(form.entryIDs == [other])
        }
    }

    @Test func pagingNeitherRepeatsNorSkipsWhileRowsAreAdded() async throws {
        let fixture = try await RecordsFixture.make("paging")
        try await fixture.app().test(.router) { client in
            let reception = try await fixture.token(.receptionist)
            var created: [String] = []
            for n in 0..<7 { created.append(try await client.create("Patient", Sample.patient("Page\(n)"), token: reception)) }
            var seen: [String] = []
            var next: String? = "/fhir/Patient?family=page&_count=3&_sort=_lastUpdated"
            var pages = 0
            while let url = next {
                let page = try await client.fhir(.get, url.replacingOccurrences(of: "http://records.test", with: ""), token: reception)
                #expect(page.status == .ok)
                seen += page.entryIDs
                pages += 1
                // The total counts every match, on later pages too (the row added after page 1 included).
                #expect(page.total == (pages == 1 ? 7 : 8), "page \(pages) total \(String(describing: page.total))")
                if pages == 1 { created.append(try await client.create("Patient", Sample.patient("Page-new"), token: reception)) }
                next = page.json?["link"]?.arrayValue?.first { $0["relation"]?.stringValue == "next" }?["url"]?.stringValue
                if pages == 2 {
                    let previousURL = try #require(page.json?["link"]?.arrayValue?.first { $0["relation"]?.stringValue == "previous" }?["url"]?.stringValue)
                    let previous = try await client.fhir(.get, previousURL.replacingOccurrences(of: "http://records.test", with: ""), token: reception)
                    #expect(previous.entryIDs == Array(seen.prefix(3)))
                }
            }
            #expect(seen == created, "pages gave \(seen)")
            // A page past the last match still has the total.
            let pastEnd = Array("a|\(Int64.max)|zzzz".utf8).base64URLString
            let empty = try await client.fhir(.get, "/fhir/Patient?family=page&_count=3&_sort=_lastUpdated&_cursor=\(pastEnd)", token: reception)
            #expect(empty.status == .ok && empty.entryIDs.isEmpty && empty.total == 8, "\(empty.text)")
        }
    }
}
