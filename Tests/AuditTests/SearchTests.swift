import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import TestSupport
import Testing

@Suite struct SearchTests {
    static let doctorAccount = "6d1f3c2a-0b8e-4a57-9f3e-1c2d3e4f5a6b"
    static let newAccount = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    static let adminAccount = "0f0e0d0c-0b0a-4909-8807-060504030201"

    /// Nine events of every kind, with their ids by name.
    static func trail(_ fixture: AuditFixture, _ client: some TestClientProtocol) async throws -> [String: String] {
        let named: [(String, JSONValue)] = [
            (
                "login",
                AuditSample.authentication(AuditSample.login, account: doctorAccount, who: "Practitioner/d1", recorded: "2026-05-01T08:00:00Z")
            ),
            (
                "failed",
                AuditSample.authentication(
                    AuditSample.login, account: doctorAccount, who: "Practitioner/d1", recorded: "2026-05-01T08:05:00.250Z", outcome: "4")
            ),
            (
                "logout",
                AuditSample.authentication(AuditSample.logout, account: doctorAccount, who: "Practitioner/d1", recorded: "2026-05-01T17:00:00Z")
            ),
            (
                "read",
                AuditSample.rest(
                    "read", action: "R", agent: "Practitioner/d1", account: doctorAccount, entity: "DiagnosticReport/r1/_history/2",
                    patient: "Patient/p1",
                    recorded: "2026-05-02T10:00:00Z")
            ),
            (
                "breakGlass",
                AuditSample.rest(
                    "read", action: "R", agent: "Practitioner/d2", entity: "DiagnosticReport/r2/_history/1", patient: "Patient/p2",
                    recorded: "2026-06-01T12:00:00.500Z", breakGlass: true)
            ),
            (
                "upload",
                AuditSample.rest(
                    "create", action: "C", agent: "Practitioner/t1", entity: "DiagnosticReport/r1/_history/1", patient: "Patient/p1",
                    recorded: "2026-04-30T09:00:00Z")
            ),
            (
                "ownRead",
                AuditSample.rest(
                    "read", action: "R", agent: "Patient/p1", entity: "DiagnosticReport/r1/_history/2", patient: nil, recorded: "2026-07-01T00:00:00Z"
                )
            ),
            (
                "failedSearch",
                AuditSample.rest(
                    "search-type", action: "E", agent: "Practitioner/d1", account: doctorAccount, patient: "Patient/p2",
                    recorded: "2025-12-31T23:59:59.999Z", outcome: "8")
            ),
            ("account", AuditSample.accountCreated(newAccount, by: adminAccount, recorded: "2026-03-15T11:00:00+02:00")),
        ]
        let ids = try await fixture.ingest(named.map(\.1), client: client)
        return Dictionary(uniqueKeysWithValues: zip(named.map(\.0), ids))
    }

    @Test func parametersFollowFHIRSemantics() async throws {
        let fixture = try await AuditFixture.make("search")
        try await fixture.app().test(.router) { client in
            let id = try await Self.trail(fixture, client)
            let admin = try await fixture.admin()
            func names(_ query: String) async throws -> Set<String> { try await client.names("?\(query)", token: admin, trail: id) }
            let user = AuditEventParts.userSystem
            let dicom = AuditEventParts.dicom

            #expect(try await names("patient=Patient/p1") == ["read", "upload", "ownRead"])
            #expect(try await names("patient=p1") == ["read", "upload", "ownRead"])
            #expect(try await names("patient=\(AuditFixture.base)/Patient/p1") == ["read", "upload", "ownRead"])
            #expect(try await names("patient=p1,p2") == ["read", "upload", "ownRead", "breakGlass", "failedSearch"])
            #expect(try await names("patient=p1&patient=p2") == [])
            #expect(try await names("patient=p9") == [])

            #expect(try await names("agent=Practitioner/d1") == ["login", "failed", "logout", "read", "failedSearch"])
            #expect(try await names("agent:Practitioner=d2") == ["breakGlass"])
            #expect(try await names("agent=Practitioner/d2,Patient/p1") == ["breakGlass", "ownRead"])
            // An account's login history: its identifier and the authentication event type.
            #expect(try await names("agent:identifier=\(user)|\(Self.doctorAccount)&type=110114") == ["login", "failed", "logout"])
            #expect(try await names("agent:identifier=\(user)|\(Self.doctorAccount)&type=110114&subtype=110123") == ["logout"])
            #expect(try await names("agent:identifier=\(user)|\(Self.doctorAccount)").count == 5)
            #expect(try await names("agent:identifier=urn:other|\(Self.doctorAccount)") == [])

            #expect(try await names("entity=DiagnosticReport/r1") == ["read", "upload", "ownRead"])
            #expect(try await names("entity=DiagnosticReport/r1/_history/2") == ["read", "ownRead"])
            #expect(try await names("entity:DiagnosticReport=r2") == ["breakGlass"])
            #expect(try await names("entity=Patient/p2") == ["breakGlass", "failedSearch"])
            #expect(try await names("entity:identifier=\(user)|\(Self.newAccount)") == ["account"])

            #expect(try await names("type=110114") == ["login", "failed", "logout"])
            #expect(try await names("type=\(dicom)|110114") == ["login", "failed", "logout"])
            #expect(try await names("type=|110114") == [])
            #expect(try await names("type=http://other.org|110114") == [])
            #expect(try await names("type=110114,110137") == ["login", "failed", "logout", "account"])
            #expect(try await names("type=rest") == ["read", "breakGlass", "upload", "ownRead", "failedSearch"])
            #expect(try await names("subtype=110122") == ["login", "failed"])
            #expect(try await names("subtype=http://hl7.org/fhir/restful-interaction|read") == ["read", "breakGlass", "ownRead"])
            #expect(try await names("subtype=create") == ["upload", "account"])

            #expect(try await names("action=E") == ["login", "failed", "logout", "failedSearch"])
            #expect(try await names("action=C,U") == ["upload", "account"])
            #expect(try await names("action=http://hl7.org/fhir/audit-event-action|R") == ["read", "breakGlass", "ownRead"])
            #expect(try await names("action=http://other.org|R") == [])
            #expect(try await names("outcome=4") == ["failed"])
            #expect(try await names("outcome=4,8") == ["failed", "failedSearch"])
            #expect(try await names("outcome=http://hl7.org/fhir/audit-event-outcome|8") == ["failedSearch"])

            #expect(try await names("_id=\(id["login"]!),\(id["read"]!)") == ["login", "read"])
            #expect(try await names("_id=abc,0\(id["login"]!)") == [])

            // Filters combine (AND); a patient's filter reads that patient's index rows.
            #expect(try await names("patient=p1&action=R") == ["read", "ownRead"])
            #expect(try await names("patient=p1&date=lt2026-05-01") == ["upload"])
            #expect(try await names("patient=p2&outcome=8&agent=Practitioner/d1") == ["failedSearch"])
            #expect(try await names("patient=p1,p2&action=R&date=2026-06") == ["breakGlass"])
        }
    }

    @Test func datesTakeEveryPrefix() async throws {
        let fixture = try await AuditFixture.make("dates")
        try await fixture.app().test(.router) { client in
            let id = try await Self.trail(fixture, client)
            let admin = try await fixture.admin()
            func names(_ query: String) async throws -> Set<String> { try await client.names("?\(query)", token: admin, trail: id) }
            let all = Set(id.keys)
            let mayFirst: Set = ["login", "failed", "logout"]
            #expect(try await names("date=2026-05-01") == mayFirst)
            #expect(try await names("date=eq2026-05-01") == mayFirst)
            #expect(try await names("date=2026-05") == mayFirst.union(["read"]))
            #expect(try await names("date=ne2026-05-01") == all.subtracting(mayFirst))
            #expect(try await names("date=ge2026-06-01") == ["breakGlass", "ownRead"])
            #expect(try await names("date=gt2026-06-01") == ["ownRead"])
            #expect(try await names("date=sa2026-06-01") == ["ownRead"])
            #expect(try await names("date=le2025-12-31") == ["failedSearch"])
            #expect(try await names("date=lt2026-01-01") == ["failedSearch"])
            #expect(try await names("date=eb2026-04-30") == ["failedSearch", "account"])
            #expect(try await names("date=le2026-04-30") == ["failedSearch", "account", "upload"])
            // Instants: at their own precision, and a time zone other than Z.
            #expect(try await names("date=2026-06-01T12:00:00.500Z") == ["breakGlass"])
            #expect(try await names("date=2026-06-01T12:00:00Z") == ["breakGlass"])
            #expect(try await names("date=2026-06-01T12:00:01Z") == [])
            #expect(try await names("date=2025-12-31T23:59:59.999Z") == ["failedSearch"])
            #expect(try await names("date=2026-03-15T09:00:00Z") == ["account"])
            #expect(try await names("date=ge2026-05-01T08:05:00.250Z&date=lt2026-05-01T08:05:00.251Z") == ["failed"])
            // Repeated parameters AND, comma-separated values OR.
            #expect(try await names("date=ge2026-05-01&date=lt2026-05-02") == mayFirst)
            #expect(try await names("date=2025,2026-07") == ["failedSearch", "ownRead"])
            // ap: within a tenth of the value's distance from now.
            let value = try #require(FHIRDate.searchRange("2026-05-02"))
            let margin = max(abs(Date().timeIntervalSince(value.low)), abs(Date().timeIntervalSince(value.high))) / 10
            let recorded: [String: String] = [
                "login": "2026-05-01T08:00:00Z", "failed": "2026-05-01T08:05:00.250Z", "logout": "2026-05-01T17:00:00Z",
                "read": "2026-05-02T10:00:00Z",
                "breakGlass": "2026-06-01T12:00:00.500Z", "upload": "2026-04-30T09:00:00Z", "ownRead": "2026-07-01T00:00:00Z",
                "failedSearch": "2025-12-31T23:59:59.999Z", "account": "2026-03-15T09:00:00Z",
            ]
            let near = recorded.filter { _, text in
                let instant = FHIRDate.searchRange(text)!.low
                return instant >= value.low.addingTimeInterval(-margin) && instant < value.high.addingTimeInterval(margin)
            }
            #expect(try await names("date=ap2026-05-02") == Set(near.keys))
        }
    }

    @Test func badParametersAreA400() async throws {
        let fixture = try await AuditFixture.make("badsearch")
        try await fixture.app().test(.router) { client in
            let id = try await Self.trail(fixture, client)
            let admin = try await fixture.admin()
            let textCursor = Array("a|1|abc".utf8).base64URLString
            for bad in [
                "patient=Practitioner/d1", "patient=Patient/p1/_history/1", "patient=a%20b", "agent=d1", "entity=r1", "agent=Practitioner/",
                "agent:identifier=\(Self.doctorAccount)", "entity:identifier=urn:x|", "type=\(AuditEventParts.dicom)|", "date=2026-13",
                "date=xx2026", "date=yesterday", "_sort=recorded", "_sort=date,-date", "_count=-1", "_count=many", "_total=maybe", "_cursor=bogus",
                "_cursor=\(textCursor)", "action:not=R", "patient:identifier=x|y", "agent:missing=true", "type:text=login", "date:exact=2026",
            ] {
                let answer = try await client.send(.get, "/fhir/AuditEvent?\(bad)", token: admin)
                #expect(answer.status == .badRequest, "\(bad): \(answer.status) \(answer.text)")
                #expect(answer.json?["resourceType"]?.stringValue == "OperationOutcome", "\(bad)")
                #expect(answer.contentType?.hasPrefix("application/fhir+json") == true, "\(bad)")
            }

            // Unknown parameters: ignored with a warning (lenient, the default), or a 400 (strict).
            let lenient = try await client.send(.get, "/fhir/AuditEvent?patient=p2&colour=blue&_lastUpdated=gt2020", token: admin)
            #expect(Set(lenient.ids) == [id["breakGlass"]!, id["failedSearch"]!] && lenient.total == 2)
            let outcome = (lenient.json?["entry"]?.arrayValue ?? []).first { $0["search"]?["mode"]?.stringValue == "outcome" }
            #expect(outcome?["resource"]?["issue"]?.arrayValue?.first?["severity"]?.stringValue == "warning")
            #expect(outcome?["resource"]?["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue?.contains("colour, _lastUpdated") == true)
            #expect(lenient.link("self") == "\(AuditFixture.base)/AuditEvent?patient=p2")
            let strict = try await client.send(
                .get, "/fhir/AuditEvent?patient=p2&colour=blue", token: admin, headers: [HTTPField.Name("Prefer")!: "handling=strict"])
            #expect(strict.status == .badRequest && strict.issue?.diagnostics.contains("colour") == true)

            // POST _search takes the same parameters as a form, merged with the query.
            let posted = try await client.send(
                .post, "/fhir/AuditEvent/_search?action=R", token: admin, body: "patient=Patient%2Fp1",
                headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(posted.status == .ok && Set(posted.ids) == [id["read"]!, id["ownRead"]!], "\(posted.text)")
            #expect(try await client.send(.post, "/fhir/AuditEvent/_search", token: admin, body: "{}").status == .unsupportedMediaType)
            #expect(try await client.send(.get, "/fhir/AuditEvent?_format=xml", token: admin).status == .notAcceptable)
            #expect(try await client.send(.get, "/fhir/AuditEvent", token: admin, headers: [.accept: "application/xml"]).status == .notAcceptable)
        }
    }

    @Test func pagesForwardsAndBackWithStableTotals() async throws {
        let fixture = try await AuditFixture.make("paging")
        try await fixture.app().test(.router) { client in
            // p1: seven events (two at the same instant, ordered by id), interleaved with p2's.
            var events: [JSONValue] = []
            for (n, day) in ["01", "02", "03", "03", "05", "06", "07"].enumerated() {
                events.append(
                    AuditSample.rest(
                        "read", action: "R", agent: "Practitioner/d1", entity: "DiagnosticReport/r\(n)/_history/1", patient: "Patient/p1",
                        recorded: "2026-05-\(day)T10:00:00Z"))
                events.append(
                    AuditSample.rest("read", action: "R", agent: "Practitioner/d1", patient: "Patient/p2", recorded: "2026-05-\(day)T11:00:00Z"))
            }
            let ids = try await fixture.ingest(events, client: client)
            let p1Events = stride(from: 0, to: ids.count, by: 2).map { ids[$0] }
            let newestFirst = Array(p1Events.reversed())

            for (token, query) in [(try await fixture.patient("p1"), ""), (try await fixture.admin(), "&patient=Patient/p1")] {
                let all = try await client.send(.get, "/fhir/AuditEvent?_count=100\(query)", token: token)
                #expect(all.ids == newestFirst && all.total == 7)

                let first = try await client.send(.get, "/fhir/AuditEvent?_count=3\(query)", token: token)
                #expect(first.ids == Array(newestFirst[0..<3]) && first.total == 7 && first.link("previous") == nil)
                var pages = [first.ids]
                var next = first.link("next")
                var last = first
                while let url = next {
                    last = try await client.send(.get, String(url.dropFirst("http://audit.test".count)), token: token)
                    #expect(last.status == .ok && last.total == 7)
                    pages.append(last.ids)
                    next = last.link("next")
                }
                #expect(pages.flatMap { $0 } == newestFirst && pages.count == 3)
                var previous = last.link("previous")
                var back: [[String]] = []
                while let url = previous {
                    let page = try await client.send(.get, String(url.dropFirst("http://audit.test".count)), token: token)
                    #expect(page.total == 7)
                    back.insert(page.ids, at: 0)
                    previous = page.link("previous")
                }
                #expect(back == [Array(newestFirst[0..<3]), Array(newestFirst[3..<6])])

                let ascending = try await client.send(.get, "/fhir/AuditEvent?_sort=date&_count=4\(query)", token: token)
                #expect(ascending.ids == Array(p1Events[0..<4]) && ascending.total == 7)
                let ascendingNext = try await client.send(
                    .get, String(try #require(ascending.link("next")).dropFirst("http://audit.test".count)), token: token)
                #expect(ascendingNext.ids == Array(p1Events[4..<7]) && ascendingNext.link("next") == nil)
                let descending = try await client.send(.get, "/fhir/AuditEvent?_sort=-date&_count=2\(query)", token: token)
                #expect(descending.ids == Array(newestFirst[0..<2]))
                let countOnly = try await client.send(.get, "/fhir/AuditEvent?_count=0\(query)", token: token)
                #expect(countOnly.total == 7 && countOnly.ids.isEmpty && countOnly.json?["entry"] == nil)
                let noTotal = try await client.send(.get, "/fhir/AuditEvent?_total=none&_count=2\(query)", token: token)
                #expect(noTotal.total == nil && noTotal.ids.count == 2)
                let capped = try await client.send(.get, "/fhir/AuditEvent?_count=5000\(query)", token: token)
                #expect(capped.ids.count == 7 && capped.link("self")?.contains("_count=1000") == true)
            }

            // The whole trail (no patient pinned) pages the same way.
            let admin = try await fixture.admin()
            var seen: [String] = []
            var url: String? = "/fhir/AuditEvent?_count=4"
            while let next = url {
                let page = try await client.send(.get, next, token: admin)
                #expect(page.total == 14)
                seen += page.ids
                url = page.link("next").map { String($0.dropFirst("http://audit.test".count)) }
            }
            // Newest first by recorded, then by id (p2's events are an hour after p1's of the same day).
            let byDate = ids.indices.sorted { (events[$0]["recorded"]!.stringValue!, $0) > (events[$1]["recorded"]!.stringValue!, $1) }
            #expect(seen == byDate.map { ids[$0] })
            let bundle = try await client.send(.get, "/fhir/AuditEvent?_count=1", token: admin)
            let entry = try #require(bundle.json?["entry"]?.arrayValue?.first)
            #expect(entry["fullUrl"]?.stringValue == "\(AuditFixture.base)/AuditEvent/\(bundle.ids[0])")
            #expect(entry["search"]?["mode"]?.stringValue == "match" && bundle.json?["type"]?.stringValue == "searchset")
            #expect(bundle.link("self") == "\(AuditFixture.base)/AuditEvent?_count=1")
        }
    }
}
