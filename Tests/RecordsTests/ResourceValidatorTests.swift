@testable import Records
import MedLedgerCore
import Testing

/// A resource with exactly one problem, at `expression`.
struct InvalidResourceCase: Sendable, CustomTestStringConvertible {
    var note: String
    var type: ResourceType
    var json: String
    var expression: String

    var testDescription: String { "\(note) → \(expression)" }

    /// A minimal valid resource of `type` plus `members` (JSON object members, without braces).
    static func with(_ type: ResourceType, _ members: String) -> String {
        let base =
            switch type {
            case .diagnosticReport: #""status":"final","code":{"text":"CBC"}"#
            case .binary: #""contentType":"application/pdf""#
            case .patient, .practitioner: ""
            }
        return #"{"resourceType":""# + type.rawValue + "\"" + (base.isEmpty ? "" : "," + base) + (members.isEmpty ? "" : "," + members) + "}"
    }

    static func report(_ note: String, _ members: String, _ expression: String) -> InvalidResourceCase {
        InvalidResourceCase(note: note, type: .diagnosticReport, json: with(.diagnosticReport, members), expression: "DiagnosticReport." + expression)
    }

    static func patient(_ note: String, _ members: String, _ expression: String) -> InvalidResourceCase {
        InvalidResourceCase(note: note, type: .patient, json: with(.patient, members), expression: "Patient." + expression)
    }

    static func practitioner(_ note: String, _ members: String, _ expression: String) -> InvalidResourceCase {
        InvalidResourceCase(note: note, type: .practitioner, json: with(.practitioner, members), expression: "Practitioner." + expression)
    }

    static func binary(_ note: String, _ members: String, _ expression: String) -> InvalidResourceCase {
        InvalidResourceCase(note: note, type: .binary, json: with(.binary, members), expression: "Binary." + expression)
    }

    static let all: [InvalidResourceCase] = [
        // resourceType and required elements
        InvalidResourceCase(
            note: "resourceType missing", type: .diagnosticReport, json: #"{"status":"final","code":{"text":"CBC"}}"#,
            expression: "DiagnosticReport.resourceType"),
        InvalidResourceCase(
            note: "resourceType of another type", type: .diagnosticReport,
            json: #"{"resourceType":"Patient","status":"final","code":{"text":"CBC"}}"#,
            expression: "DiagnosticReport.resourceType"),
        InvalidResourceCase(
            note: "status missing", type: .diagnosticReport, json: #"{"resourceType":"DiagnosticReport","code":{"text":"CBC"}}"#,
            expression: "DiagnosticReport.status"),
        InvalidResourceCase(
            note: "status outside its value set", type: .diagnosticReport,
            json: #"{"resourceType":"DiagnosticReport","status":"done","code":{"text":"CBC"}}"#, expression: "DiagnosticReport.status"),
        InvalidResourceCase(
            note: "status mistyped", type: .diagnosticReport, json: #"{"resourceType":"DiagnosticReport","status":3,"code":{"text":"CBC"}}"#,
            expression: "DiagnosticReport.status"),
        InvalidResourceCase(
            note: "code missing", type: .diagnosticReport, json: #"{"resourceType":"DiagnosticReport","status":"final"}"#,
            expression: "DiagnosticReport.code"),
        InvalidResourceCase(
            note: "code mistyped", type: .diagnosticReport, json: #"{"resourceType":"DiagnosticReport","status":"final","code":"CBC"}"#,
            expression: "DiagnosticReport.code"),
        InvalidResourceCase(
            note: "code empty", type: .diagnosticReport, json: #"{"resourceType":"DiagnosticReport","status":"final","code":{}}"#,
            expression: "DiagnosticReport.code"),
        InvalidResourceCase(
            note: "code with trailing whitespace", type: .diagnosticReport,
            json: #"{"resourceType":"DiagnosticReport","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"58410-2 "}]}}"#,
            expression: "DiagnosticReport.code.coding[0].code"),
        InvalidResourceCase(
            note: "contentType missing", type: .binary, json: #"{"resourceType":"Binary","data":"SGVsbG8="}"#, expression: "Binary.contentType"),
        InvalidResourceCase(
            note: "contentType with leading space", type: .binary, json: #"{"resourceType":"Binary","contentType":" application/pdf"}"#,
            expression: "Binary.contentType"),
        InvalidResourceCase(
            note: "contentType not a media type", type: .binary, json: #"{"resourceType":"Binary","contentType":"pdf"}"#,
            expression: "Binary.contentType"),

        // DiagnosticReport elements
        report("subject not a Patient", #""subject":{"reference":"Practitioner/doc-1"}"#, "subject.reference"),
        report("subject absolute", #""subject":{"reference":"http://example.org/fhir/Patient/1"}"#, "subject.reference"),
        report("two effective[x] variants", #""effectiveDateTime":"2024-05-01","effectivePeriod":{"start":"2024-05-01"}"#, "effective"),
        report("dateTime without timezone", #""effectiveDateTime":"2024-05-01T10:00:00""#, "effectiveDateTime"),
        report("period start after end", #""effectivePeriod":{"start":"2024-05-02","end":"2024-05-01T23:00:00Z"}"#, "effectivePeriod"),
        report("issued without time", #""issued":"2024-05-01""#, "issued"),
        report("category not an array", #""category":{"text":"LAB"}"#, "category"),
        report("performer empty array", #""performer":[]"#, "performer"),
        report("performer not a reference", #""performer":[{"reference":"Dr Jones"}]"#, "performer[0].reference"),
        report("reference mistyped", #""basedOn":[{"reference":42}]"#, "basedOn[0].reference"),
        report("media without link", #""media":[{"comment":"chest"}]"#, "media[0].link"),
        report(
            "hash of 16 bytes", #""presentedForm":[{"contentType":"application/pdf","url":"Binary/b1","hash":"AAAAAAAAAAAAAAAAAAAAAA=="}]"#,
            "presentedForm[0].hash"),
        report("base64 with whitespace", #""presentedForm":[{"contentType":"text/plain","data":"SGVs bG8="}]"#, "presentedForm[0].data"),
        report("data without contentType", #""presentedForm":[{"data":"SGVsbG8="}]"#, "presentedForm[0].contentType"),
        report("contentType with two slashes", #""presentedForm":[{"contentType":"application/pdf/x","title":"a"}]"#, "presentedForm[0].contentType"),
        report("negative size", #""presentedForm":[{"url":"Binary/b1","size":-1}]"#, "presentedForm[0].size"),
        report("size with a fraction", #""presentedForm":[{"url":"Binary/b1","size":10.0}]"#, "presentedForm[0].size"),
        report("size too large", #""presentedForm":[{"url":"Binary/b1","size":2147483648}]"#, "presentedForm[0].size"),
        report("null value", #""conclusion":null"#, "conclusion"),
        report("null in an array", #""category":[null]"#, "category[0]"),
        report("empty string inside an unknown element", #""note":[{"text":""}]"#, "note[0].text"),
        report("control character in a string", #""conclusion":"a\u0000b""#, "conclusion"),
        report("empty object inside an unknown element", #""extension":[{"url":"http://example.org/x","valueCodeableConcept":{}}]"#,
            "extension[0].valueCodeableConcept"),
        report("id with a space", #""id":"has space""#, "id"),
        report("id too long", #""id":""# + String(repeating: "a", count: 65) + "\"", "id"),
        report("meta not an object", #""meta":"v1""#, "meta"),
        report("meta.lastUpdated not an instant", #""meta":{"lastUpdated":"2024-05-01"}"#, "meta.lastUpdated"),
        report("meta.profile not an array", #""meta":{"profile":"http://example.org/p"}"#, "meta.profile"),
        report("narrative div not XHTML", #""text":{"status":"generated","div":"plain text"}"#, "text.div"),
        report("narrative status missing", #""text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}"#, "text.status"),
        report("identifier use outside its value set", #""identifier":[{"use":"primary","value":"R-1"}]"#, "identifier[0].use"),
        report(
            "userSelected mistyped", #""conclusionCode":[{"coding":[{"code":"x","userSelected":"yes"}]}]"#,
            "conclusionCode[0].coding[0].userSelected"),

        // Patient elements
        patient("gender outside its value set", #""gender":"M""#, "gender"),
        patient("impossible birthDate", #""birthDate":"2023-02-29""#, "birthDate"),
        patient("birthDate with a time", #""birthDate":"1974-12-25T10:00:00Z""#, "birthDate"),
        patient("name not an array", #""name":{"family":"Smith"}"#, "name"),
        patient("given mistyped", #""name":[{"given":["Ann",7]}]"#, "name[0].given[1]"),
        patient("given empty", #""name":[{"given":["Ann",""]}]"#, "name[0].given[1]"),
        patient("given null without _given", #""name":[{"given":["Ann",null]}]"#, "name[0].given[1]"),
        patient("name use outside its value set", #""name":[{"use":"formal","family":"Smith"}]"#, "name[0].use"),
        patient("generalPractitioner a Patient", #""generalPractitioner":[{"reference":"Patient/p2"}]"#, "generalPractitioner[0].reference"),
        patient(
            "generalPractitioner versioned", #""generalPractitioner":[{"reference":"Practitioner/d1/_history/2"}]"#,
            "generalPractitioner[0].reference"),
        patient("two deceased[x] variants", #""deceasedBoolean":true,"deceasedDateTime":"2020""#, "deceased"),
        patient("telecom system outside its value set", #""telecom":[{"system":"telegram","value":"x"}]"#, "telecom[0].system"),
        patient("rank zero", #""telecom":[{"system":"phone","value":"1","rank":0}]"#, "telecom[0].rank"),
        patient("telecom value without system", #""telecom":[{"value":"+44 1"}]"#, "telecom[0].system"),
        patient("active as a string", #""active":"true""#, "active"),
        patient("address line not an array", #""address":[{"line":"1 Main St"}]"#, "address[0].line"),
        patient("address use outside its value set", #""address":[{"use":"office","city":"Leeds"}]"#, "address[0].use"),
        patient("uri with whitespace", #""identifier":[{"system":"http://example.org/ mrn","value":"1"}]"#, "identifier[0].system"),
        patient(
            "identifier period reversed", #""identifier":[{"value":"1","period":{"start":"2020-01-02","end":"2020-01-01"}}]"#,
            "identifier[0].period"),
        patient("reference without id", #""managingOrganization":{"reference":"Organization/"}"#, "managingOrganization.reference"),

        // Practitioner and Binary elements
        practitioner("gender outside its value set", #""gender":"f""#, "gender"),
        practitioner("identifier not an array", #""identifier":{"value":"1"}"#, "identifier"),
        practitioner("birthDate without dashes", #""birthDate":"19741225""#, "birthDate"),
        binary("data length not a multiple of 4", #""data":"SGVsbG8""#, "data"),
        binary("padding inside data", #""data":"SG=sbG8=""#, "data"),
        binary("securityContext a Practitioner", #""securityContext":{"reference":"Practitioner/d1"}"#, "securityContext.reference"),
    ]
}

@Suite struct ResourceValidatorTests {
    func issues(_ json: String, as type: ResourceType) throws -> [ValidationIssue] {
        ResourceValidator.validate(try JSONParser.parse(Array(json.utf8)), as: type)
    }

    // MARK: Valid resources

    @Test func validPatientHasNoIssues() throws {
        let json = #"""
            {
              "resourceType": "Patient",
              "id": "pat-1",
              "meta": {
                "versionId": "1", "lastUpdated": "2024-05-01T10:20:30.123Z", "source": "urn:uuid:4b2c0e9e-5f6a-4b8e-9c1d-2f3e4a5b6c7d",
                "profile": ["http://hl7.org/fhir/StructureDefinition/Patient"], "tag": [{"system": "http://example.org/tags", "code": "test"}]
              },
              "implicitRules": "http://example.org/rules",
              "language": "en-GB",
              "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Ann Smith</div>"},
              "identifier": [{
                "use": "official",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}], "text": "Medical record number"},
                "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345", "period": {"start": "2001-05-06"},
                "assigner": {"display": "Acme Healthcare"}
              }],
              "active": true,
              "name": [
                {"use": "official", "family": "Smith", "given": ["Ann", "Marie"], "prefix": ["Dr."],
                 "period": {"start": "2000", "end": "2030-01-01T00:00:00Z"}},
                {"use": "nickname", "text": "Annie"}
              ],
              "telecom": [
                {"system": "phone", "value": "+44 20 7946 0000", "use": "mobile", "rank": 1}, {"system": "email", "value": "ann@example.org"}
              ],
              "gender": "female",
              "birthDate": "1974-12-25",
              "deceasedBoolean": false,
              "address": [{
                "use": "home", "type": "both", "text": "1 Main Street, Leeds", "line": ["1 Main Street"], "city": "Leeds",
                "district": "West Yorkshire",
                "state": "England", "postalCode": "LS1 1AA", "country": "GB", "period": {"start": "1974-12-25"}
              }],
              "generalPractitioner": [{"reference": "Practitioner/doc-1", "display": "Dr Jones"}, {"reference": "Organization/org.1"}],
              "managingOrganization": {"reference": "Organization/1", "type": "Organization"}
            }
            """#
        #expect(try issues(json, as: .patient) == [])
    }

    @Test func validPractitionerHasNoIssues() throws {
        let json = #"""
            {
              "resourceType": "Practitioner",
              "id": "doc-1",
              "identifier": [{"system": "https://fhir.nhs.uk/Id/gmc-number", "value": "C1234567"}],
              "active": true,
              "name": [{"family": "Jones", "given": ["Emma"], "prefix": ["Dr"], "suffix": ["MD"]}],
              "telecom": [{"system": "email", "value": "emma.jones@example.org", "use": "work"}],
              "address": [{"line": ["Leeds General Infirmary"], "city": "Leeds"}],
              "gender": "female",
              "birthDate": "1980-07"
            }
            """#
        #expect(try issues(json, as: .practitioner) == [])
    }

    @Test func validDiagnosticReportHasNoIssues() throws {
        let json = #"""
            {
              "resourceType": "DiagnosticReport",
              "id": "dr-1",
              "contained": [{"resourceType": "Specimen", "id": "sp1", "type": {"text": "blood"}}],
              "identifier": [{"system": "http://example.org/reports", "value": "R-1"}],
              "basedOn": [{"reference": "ServiceRequest/sr-1"}],
              "status": "final",
              "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
              "code": {
                "coding": [{"system": "http://loinc.org", "code": "58410-2", "display": "CBC panel - Blood by Automated count"}], "text": "CBC"
              },
              "subject": {"reference": "Patient/pat-1"},
              "encounter": {"reference": "urn:uuid:4b2c0e9e-5f6a-4b8e-9c1d-2f3e4a5b6c7d"},
              "effectiveDateTime": "2024-05-01T08:30:00+01:00",
              "issued": "2024-05-01T10:20:30.123Z",
              "performer": [{"reference": "Practitioner/doc-1"}, {"reference": "https://other.example/fhir/Organization/lab"}],
              "resultsInterpreter": [{"reference": "Practitioner/doc-1"}],
              "specimen": [{"reference": "#sp1"}],
              "result": [{"reference": "Observation/obs-1/_history/2"}],
              "imagingStudy": [{"identifier": {"system": "urn:dicom:uid", "value": "urn:oid:2.16.124.113543"}}],
              "media": [{"comment": "chest", "link": {"reference": "Media/m1"}}],
              "conclusion": "Normal.",
              "conclusionCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "281900007", "userSelected": true}]}],
              "presentedForm": [{
                "contentType": "application/pdf", "language": "en-GB", "url": "Binary/bin-1", "size": 1024,
                "hash": "2jmj7l5rSw0yVb/vlWAYkK/YBwk=", "title": "Report", "creation": "2024-05-01T10:00:00Z"
              }, {"contentType": "text/plain", "data": "SGVsbG8="}]
            }
            """#
        #expect(try issues(json, as: .diagnosticReport) == [])
    }

    @Test func diagnosticReportWithEffectivePeriodHasNoIssues() throws {
        let json = InvalidResourceCase.with(
            .diagnosticReport, #""effectivePeriod":{"start":"2024-05-01T10:00:00Z","end":"2024-05-01"},"subject":{"reference":"Patient/p"}"#)
        #expect(try issues(json, as: .diagnosticReport) == [])
    }

    @Test func validBinaryHasNoIssues() throws {
        let json = #"""
            {"resourceType": "Binary", "id": "bin-1", "meta": {"versionId": "2"}, "contentType": "application/pdf",
             "securityContext": {"reference": "Patient/pat-1"}, "data": "JVBERi0xLjQK"}
            """#
        #expect(try issues(json, as: .binary) == [])
    }

    @Test func unknownElementsAndPrimitiveExtensionsAreLeftAlone() throws {
        let json = #"""
            {
              "resourceType": "Patient",
              "extension": [{"url": "http://example.org/ext", "valueDecimal": 1.50}],
              "modifierExtension": [{"url": "http://example.org/mod", "valueBoolean": true}],
              "multipleBirthInteger": 2,
              "futureElement": {"nested": [1, "two", {"three": 3}]},
              "birthDate": "1974",
              "_birthDate": {"extension": [{"url": "http://example.org/precision", "valueCode": "year"}]},
              "name": [{"given": ["Ann", null], "_given": [null, {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}]}],
              "_gender": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "asked-declined"}]}
            }
            """#
        #expect(try issues(json, as: .patient) == [])
    }

    // MARK: Invalid resources

    @Test(arguments: InvalidResourceCase.all)
    func eachRuleReportsItsExpression(_ invalid: InvalidResourceCase) throws {
        let found = try issues(invalid.json, as: invalid.type)
        #expect(found.map(\.expression) == [invalid.expression], "\(found)")
        #expect(found.allSatisfy { !$0.message.isEmpty })
    }

    @Test func reportsEveryProblem() throws {
        let json = #"{"resourceType":"DiagnosticReport","status":"done","subject":{"reference":"Group/1"},"issued":"yesterday","id":""}"#
        let expressions = try issues(json, as: .diagnosticReport).map(\.expression)
        #expect(
            Set(expressions) == [
                "DiagnosticReport.id", "DiagnosticReport.status", "DiagnosticReport.code", "DiagnosticReport.subject.reference",
                "DiagnosticReport.issued",
            ])
        #expect(expressions.count == 5)
    }

    @Test func messagesNameTheRuleAndTheExpectedType() throws {
        func message(_ type: ResourceType, _ members: String) throws -> String? {
            try issues(InvalidResourceCase.with(type, members), as: type).first?.message
        }
        #expect(try issues(#"{"resourceType":"DiagnosticReport","code":{"text":"x"}}"#, as: .diagnosticReport).first?.message == "status is required")
        #expect(
            try issues(#"{"resourceType":"DiagnosticReport","status":"done","code":{"text":"x"}}"#, as: .diagnosticReport).first?.message
                == "status must be one of registered, partial, preliminary, final, amended, corrected, appended, cancelled, "
                + "entered-in-error, unknown")
        #expect(
            try issues(#"{"resourceType":"DiagnosticReport","status":3,"code":{"text":"x"}}"#, as: .diagnosticReport).first?.message
                == "status must be a code (JSON string), not a number")
        #expect(try message(.patient, #""birthDate":"1974-13""#) == "birthDate must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)")
        #expect(try message(.patient, #""name":{"family":"Smith"}"#) == "name must be an array of HumanName, not an object")
        #expect(try message(.patient, #""name":[{"given":["Ann",7]}]"#) == "given must be a string, not a number")
        #expect(try message(.patient, #""active":"yes""#) == "active must be a boolean, not a string")
        #expect(try message(.diagnosticReport, #""subject":{"reference":"Group/1"}"#) == "subject reference must be Patient/{id}")
        #expect(
            try message(.patient, #""generalPractitioner":[{"reference":"Patient/p"}]"#)
                == "generalPractitioner reference must be Practitioner/{id}, Organization/{id} or PractitionerRole/{id}")
        #expect(try message(.diagnosticReport, #""conclusion":null"#) == "conclusion must not be null")
        #expect(try message(.diagnosticReport, #""performer":[]"#) == "performer must not be an empty array")
        #expect(try message(.binary, #""securityContext":"Patient/1""#) == "securityContext must be a Reference object, not a string")
        #expect(
            try message(.diagnosticReport, #""effectiveDateTime":"2024","effectivePeriod":{"start":"2024"}"#)
                == "effective[x] must have only one of effectiveDateTime, effectivePeriod")
    }

    // MARK: Reference shapes

    @Test(arguments: [
        "ServiceRequest/sr-1", "ServiceRequest/A.b-9/_history/2", "http://example.org/fhir/ServiceRequest/1", "https://example.org/sr",
        "urn:uuid:4b2c0e9e-5f6a-4b8e-9c1d-2f3e4a5b6c7d", "urn:oid:1.2.840.10008", "#sr1", "#",
    ])
    func acceptedReferenceShapes(_ reference: String) throws {
        let json = InvalidResourceCase.with(.diagnosticReport, #""basedOn":[{"reference":""# + reference + #""}]"#)
        #expect(try issues(json, as: .diagnosticReport) == [])
    }

    @Test(arguments: [
        "ServiceRequest", "serviceRequest/1", "Service Request/1", "ServiceRequest/1/_history", "ServiceRequest/1/history/2", "ServiceRequest/a b",
        "ServiceRequest/1/", "http://", "https:///path", "ftp://example.org/sr", "urn:uuid:4B2C0E9E-5F6A-4B8E-9C1D-2F3E4A5B6C7D", "urn:uuid:1234",
        "urn:oid:3.1", "urn:oid:1", "urn:oid:1.02", "#a b", "/ServiceRequest/1",
    ])
    func rejectedReferenceShapes(_ reference: String) throws {
        let json = InvalidResourceCase.with(.diagnosticReport, #""basedOn":[{"reference":""# + reference + #""}]"#)
        #expect(try issues(json, as: .diagnosticReport).map(\.expression) == ["DiagnosticReport.basedOn[0].reference"])
    }

    @Test func primitiveSyntax() {
        #expect(PrimitiveSyntax.isID(String(repeating: "a", count: 64)))
        #expect(!PrimitiveSyntax.isID(String(repeating: "a", count: 65)))
        #expect(!PrimitiveSyntax.isID("a_b"))
        #expect(PrimitiveSyntax.isCode("a b"))
        #expect(!PrimitiveSyntax.isCode("a  b"))
        #expect(!PrimitiveSyntax.isCode("a\tb "))
        #expect(PrimitiveSyntax.base64DecodedCount("2jmj7l5rSw0yVb/vlWAYkK/YBwk=") == 20)
        #expect(PrimitiveSyntax.base64DecodedCount("SGVsbG8=") == 5)
        #expect(PrimitiveSyntax.base64DecodedCount("SGVsbA==") == 4)
        #expect(PrimitiveSyntax.base64DecodedCount("SGVs") == 3)
        #expect(PrimitiveSyntax.base64DecodedCount("S===") == nil)
        #expect(PrimitiveSyntax.base64DecodedCount("SGVs\nbG8=") == nil)
        #expect(PrimitiveSyntax.base64DecodedCount("SGVs-G8=") == nil)
        #expect(PrimitiveSyntax.integer("2147483647") == 2_147_483_647)
        #expect(PrimitiveSyntax.integer("1e3") == nil)
        #expect(PrimitiveSyntax.integer("-0") == nil)
        for mediaType in ["application/pdf", "text/plain; charset=utf-8", "text/plain;charset=utf-8", "application/fhir+json", "a/b;"] {
            #expect(PrimitiveSyntax.isMimeType(mediaType), "\(mediaType)")
        }
        for text in ["pdf", "application/", "/pdf", "a/b/c", "a b/c", "é/b", "text/plain ", "text/plain x", "text/plain; name=é", "-a/b",
            String(repeating: "a", count: 128) + "/b"] {
            #expect(!PrimitiveSyntax.isMimeType(text), "\(text)")
        }
        #expect(PrimitiveSyntax.isMimeType(String(repeating: "a", count: 127) + "/b"))
    }
}
