import MedLedgerCore
@testable import Records
import Testing

@Suite struct ConsentGrantTests {
    func parse(_ text: String) throws -> (grants: [ConsentGrant], maxAge: Int)? {
        ConsentGrant.parseList(try JSONParser.parse(Array(text.utf8)))
    }

    @Test func theContractsShapeBecomesGrants() throws {
        let answer = try parse(
            """
            {"grants": [
              {"patient": "Patient/p1", "scope": "all", "category": null, "resource": null, "until": null, "basis": "Consent/c1"},
              {"patient": "Patient/p2", "scope": "category", "category": "LAB", "resource": null, "until": "2030-01-02T03:04:05.678Z", "basis": "Consent/c2"},
              {"patient": "Patient/p3", "scope": "resource", "category": null, "resource": "DiagnosticReport/r9", "until": null, "basis": "Consent/c3"},
              {"patient": "Patient/p4", "scope": "all", "category": null, "resource": null, "until": "2030-01-01T00:00:00.000Z", "basis": "break-glass/b1"}
            ], "maxAge": 5}
            """)
        let grants = try #require(answer).grants
        #expect(answer?.maxAge == 5)
        #expect(grants.map(\.patient) == ["p1", "p2", "p3", "p4"])
        #expect(grants.map(\.scope) == [.all, .category("LAB"), .report("r9"), .all])
        #expect(grants.map(\.isBreakGlass) == [false, false, false, true])
        #expect(grants[1].until == FHIRDate.range(of: "2030-01-02T03:04:05.678Z", kind: .instant)?.low)
    }

    @Test func anythingElseIsRefusedWhole() throws {
        let bad = [
            #"{"grants": []}"#,
            #"{"grants": [], "maxAge": -1}"#,
            #"{"grants": [{"patient": "p1", "scope": "all", "basis": "Consent/c"}], "maxAge": 5}"#,
            #"{"grants": [{"patient": "Patient/p1", "scope": "some", "basis": "Consent/c"}], "maxAge": 5}"#,
            #"{"grants": [{"patient": "Patient/p1", "scope": "category", "basis": "Consent/c"}], "maxAge": 5}"#,
            #"{"grants": [{"patient": "Patient/p1", "scope": "resource", "resource": "Binary/x", "basis": "Consent/c"}], "maxAge": 5}"#,
            #"{"grants": [{"patient": "Patient/p1", "scope": "all", "until": "tomorrow", "basis": "Consent/c"}], "maxAge": 5}"#,
            #"{"grants": [{"patient": "Patient/p1", "scope": "all"}], "maxAge": 5}"#,
        ]
        for text in bad { #expect(try parse(text) == nil, "\(text)") }
        #expect(try parse(#"{"grants": [], "maxAge": 0}"#)?.grants == [])
    }
}
