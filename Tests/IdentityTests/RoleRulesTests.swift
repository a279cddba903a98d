import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import NIOCore
import Testing

/// The design guide's roles table, allowed and refused, through the HTTP API.
@Suite struct RoleRulesTests {
    @Test func whoMayCreateWhom() async throws {
        let fixture = try await IdentityFixture.make("roles")
        try await fixture.app().test(.router) { client in
            let admin = try await client.adminToken()
            for role in ["doctor", "receptionist", "technologist", "admin"] {
                _ = try await client.createUser("new-\(role)", role: role, fhirUser: "Practitioner/\(role)-1", by: admin)
            }
            let adminMakesPatient = try await client.request(
                .post, "/users", token: admin, json: #"{"username":"p0","password":"Correct-Horse-9!","role":"patient","name":"P"}"#)
            expectProblem(adminMakesPatient, .forbidden, "admin creates a patient")

            let receptionist = try await client.login("new-receptionist", "Correct-Horse-9!").access
            let patientID = try await client.createUser("pat1", role: "patient", fhirUser: "Patient/p1", by: receptionist)
            for role in ["doctor", "admin", "technologist", "receptionist"] {
                let response = try await client.request(
                    .post, "/users", token: receptionist, json: #"{"username":"x-\#(role)","password":"Correct-Horse-9!","role":"\#(role)","name":"X"}"#)
                expectProblem(response, .forbidden, "receptionist creates \(role)")
            }
            for user in ["new-doctor", "new-technologist"] {
                let token = try await client.login(user, "Correct-Horse-9!").access
                let create = try await client.request(
                    .post, "/users", token: token, json: #"{"username":"y-\#(user)","password":"Correct-Horse-9!","role":"patient","name":"Y"}"#)
                expectProblem(create, .forbidden, "\(user) creates a patient")
                expectProblem(try await client.request(.get, "/users", token: token), .forbidden, "\(user) lists accounts")
                expectProblem(try await client.request(.get, "/users/\(patientID)", token: token), .forbidden, "\(user) reads an account")
                expectProblem(try await client.request(.get, "/clients", token: token), .forbidden, "\(user) lists clients")
            }

            // Each manager sees only the accounts in their remit.
            let receptionistList = try json(try await client.request(.get, "/users", token: receptionist))["users"]?.arrayValue ?? []
            #expect(receptionistList.map { $0["role"]?.stringValue } == ["patient"])
            let adminList = try json(try await client.request(.get, "/users", token: admin))["users"]?.arrayValue ?? []
            #expect(Set(adminList.compactMap { $0["role"]?.stringValue }) == ["admin", "doctor", "receptionist", "technologist"])
            let doctors = try json(try await client.request(.get, "/users?role=doctor", token: admin))["users"]?.arrayValue ?? []
            #expect(doctors.map { $0["username"]?.stringValue } == ["new-doctor"])
            let doctorID = doctors.first?["id"]?.stringValue ?? ""
            expectProblem(try await client.request(.get, "/users/\(doctorID)", token: receptionist), .notFound, "receptionist reads a doctor")
            #expect(try await client.request(.get, "/users/\(patientID)", token: receptionist).status == .ok)
            expectProblem(try await client.request(.get, "/users/\(patientID)", token: admin), .notFound, "admin reads a patient account")
            expectProblem(try await client.request(.get, "/users/not-a-uuid", token: admin), .notFound, "malformed id")
        }
    }

    @Test func whoMayChangeWhat() async throws {
        let fixture = try await IdentityFixture.make("rolechanges")
        try await fixture.app().test(.router) { client in
            let admin = try await client.adminToken()
            let adminID = try json(try await client.request(.get, "/users/me", token: admin))["id"]?.stringValue ?? ""
            let doctorID = try await client.createUser("doc", role: "doctor", fhirUser: "Practitioner/d1", by: admin)
            _ = try await client.createUser("frontdesk", role: "receptionist", by: admin)
            let receptionist = try await client.login("frontdesk", "Correct-Horse-9!").access
            let patientID = try await client.createUser("pat", role: "patient", fhirUser: "Patient/p1", by: receptionist)

            let toTechnologist = try await client.request(.patch, "/users/\(doctorID)", token: admin, json: #"{"role":"technologist"}"#)
            #expect(toTechnologist.status == .ok)
            #expect(try json(toTechnologist)["role"]?.stringValue == "technologist")
            expectProblem(
                try await client.request(.patch, "/users/\(doctorID)", token: admin, json: #"{"role":"patient"}"#), .forbidden, "staff to patient")
            expectProblem(
                try await client.request(.patch, "/users/\(patientID)", token: receptionist, json: #"{"role":"doctor"}"#), .forbidden,
                "patient to doctor")
            expectProblem(try await client.request(.patch, "/users/\(adminID)", token: admin, json: #"{"disabled":true}"#), .conflict, "admin disables self")
            expectProblem(try await client.request(.patch, "/users/\(adminID)", token: admin, json: #"{"role":"doctor"}"#), .conflict, "admin demotes self")
            expectProblem(
                try await client.request(.patch, "/users/\(doctorID)", token: admin, json: #"{"fhirUser":"Patient/p9"}"#), .unprocessableContent,
                "staff linked to a Patient")
            let relinked = try await client.request(.patch, "/users/\(patientID)", token: receptionist, json: #"{"fhirUser":"Patient/p2","name":"Pat Two"}"#)
            #expect(try json(relinked)["fhirUser"]?.stringValue == "Patient/p2")
            let unlinked = try await client.request(.patch, "/users/\(patientID)", token: receptionist, json: #"{"fhirUser":null}"#)
            #expect(try json(unlinked)["fhirUser"] == .null)
            expectProblem(try await client.request(.patch, "/users/\(doctorID)", token: receptionist, json: #"{"disabled":true}"#), .notFound, "reception vs staff")

            // Disabling ends the account's sessions at once.
            let doctor = try await client.login("doc", "Correct-Horse-9!")
            #expect(try await client.request(.patch, "/users/\(doctorID)", token: admin, json: #"{"disabled":true}"#).status == .ok)
            expectProblem(try await client.request(.post, "/auth/login", json: #"{"username":"doc","password":"Correct-Horse-9!"}"#), .unauthorized, "disabled login")
            try expectOAuthError(try await client.form("grant_type=refresh_token&refresh_token=\(doctor.refresh!)"), .badRequest, "invalid_grant")
            expectProblem(try await client.request(.get, "/users/me", token: doctor.access), .unauthorized, "disabled account's token")
        }
    }

    @Test func oneTimePasswordMustBeChangedFirst() async throws {
        let fixture = try await IdentityFixture.make("onetime")
        try await fixture.app().test(.router) { client in
            let admin = try await client.adminToken()
            _ = try await client.createUser("frontdesk", role: "receptionist", by: admin)
            let receptionist = try await client.login("frontdesk", "Correct-Horse-9!").access
            let created = try await client.request(
                .post, "/users", token: receptionist,
                json: #"{"username":"Pat.One","password":"One-Time-Pass-1","role":"patient","name":"Pat One","fhirUser":"Patient/p1"}"#)
            #expect(created.status == .created)
            #expect(created.headers[.location]?.hasPrefix("/users/") == true)
            let body = try json(created)
            #expect(body["username"]?.stringValue == "pat.one")
            #expect(body["mustChangePassword"] == .bool(true))
            #expect(!String(buffer: created.body).contains("One-Time-Pass-1") && !String(buffer: created.body).contains("$2b$"))

            let first = try await client.login("pat.one", "One-Time-Pass-1")
            #expect(first.scope == Scope.changePassword)
            #expect(try claims(first.access)["scope"]?.stringValue == Scope.changePassword)
            expectProblem(try await client.request(.get, "/users/me", token: first.access), .forbidden, "restricted token reads /users/me")
            let wrong = try await client.request(
                .post, "/users/me/password", token: first.access, json: #"{"currentPassword":"nope","newPassword":"N3w-Secret-Pass!"}"#)
            expectProblem(wrong, .forbidden, "wrong current password")
            let weak = try await client.request(
                .post, "/users/me/password", token: first.access, json: #"{"currentPassword":"One-Time-Pass-1","newPassword":"short"}"#)
            expectProblem(weak, .unprocessableContent, "weak new password")
            let same = try await client.request(
                .post, "/users/me/password", token: first.access, json: #"{"currentPassword":"One-Time-Pass-1","newPassword":"One-Time-Pass-1"}"#)
            expectProblem(same, .unprocessableContent, "unchanged password")
            let changed = try await client.request(
                .post, "/users/me/password", token: first.access, json: #"{"currentPassword":"One-Time-Pass-1","newPassword":"N3w-Secret-Pass!"}"#)
            #expect(changed.status == .noContent)
            // The old token stays restricted; a refresh reflects the account as it is now.
            expectProblem(try await client.request(.get, "/users/me", token: first.access), .forbidden, "restricted token after the change")
            let refreshed = try parseTokens(try await client.form("grant_type=refresh_token&refresh_token=\(first.refresh!)"))
            #expect(refreshed.scope == Role.patient.userScopes.joined(separator: " "))
            #expect(try await client.request(.get, "/users/me", token: refreshed.access).status == .ok)
            expectProblem(try await client.request(.post, "/auth/login", json: #"{"username":"pat.one","password":"One-Time-Pass-1"}"#), .unauthorized, "old password")
            #expect(try await client.login("pat.one", "N3w-Secret-Pass!").scope.contains("patient/DiagnosticReport.rs"))

            // A reset by someone else is one-time again.
            let id = body["id"]?.stringValue ?? ""
            let reset = try await client.request(.patch, "/users/\(id)", token: receptionist, json: #"{"password":"Reset-Pass-2024x"}"#)
            #expect(try json(reset)["mustChangePassword"] == .bool(true))
            #expect(try await client.login("pat.one", "Reset-Pass-2024x").scope == Scope.changePassword)
        }
    }

    @Test func invalidAccountsAreRefused() async throws {
        let fixture = try await IdentityFixture.make("invalidaccounts")
        try await fixture.app().test(.router) { client in
            let admin = try await client.adminToken()
            _ = try await client.createUser("taken", role: "doctor", by: admin)
            let cases: [(String, HTTPResponse.Status, String)] = [
                (#"{"username":"taken","password":"Correct-Horse-9!","role":"doctor","name":"T"}"#, .conflict, "duplicate username"),
                (#"{"username":"TAKEN","password":"Correct-Horse-9!","role":"doctor","name":"T"}"#, .conflict, "duplicate in other case"),
                (#"{"username":"weak","password":"password1234","role":"doctor","name":"W"}"#, .unprocessableContent, "weak password"),
                (#"{"username":"weak2","password":"Weak2-Weak2-x","role":"doctor","name":"W"}"#, .unprocessableContent, "password contains username"),
                (#"{"username":"weak3","password":"aaaaaaaaaaaaaaaaaaaaaaaaaaa","role":"doctor","name":"W"}"#, .unprocessableContent, "repetitive"),
                (#"{"username":"longpw","password":"\#(String(repeating: "Ab1!", count: 19))","role":"doctor","name":"L"}"#, .unprocessableContent, "over 72 bytes"),
                (#"{"username":"r","password":"Correct-Horse-9!","role":"doctor","name":"R"}"#, .unprocessableContent, "short username"),
                (#"{"username":"bad name","password":"Correct-Horse-9!","role":"doctor","name":"B"}"#, .unprocessableContent, "space in username"),
                (#"{"username":"ghost","password":"Correct-Horse-9!","role":"wizard","name":"G"}"#, .unprocessableContent, "unknown role"),
                (#"{"username":"svc","password":"Correct-Horse-9!","role":"service","name":"S"}"#, .unprocessableContent, "client role for a user"),
                (#"{"username":"doc2","password":"Correct-Horse-9!","role":"doctor","name":"D","fhirUser":"Patient/1"}"#, .unprocessableContent, "wrong fhirUser type"),
                (#"{"username":"doc3","password":"Correct-Horse-9!","role":"doctor","name":"D","fhirUser":"Practitioner/a b"}"#, .unprocessableContent, "bad fhirUser id"),
                (#"{"username":"doc4","password":"Correct-Horse-9!","role":"doctor","name":""}"#, .unprocessableContent, "empty name"),
                (#"{"username":"doc5","password":"Correct-Horse-9!","role":"doctor"}"#, .badRequest, "missing name"),
                (#"{"username":"doc6","password":12,"role":"doctor","name":"D"}"#, .badRequest, "number as password"),
                (#"{"username":"doc7","password":"Correct-Horse-9!","role":"doctor","name":"D","admin":true}"#, .badRequest, "unknown member"),
                (#"{"username":"doc8","#, .badRequest, "malformed JSON"),
                (#"[]"#, .badRequest, "not an object"),
                (#"{"username":"\#(String(repeating: "u", count: 300))","password":"x","role":"doctor","name":"D"}"#, .badRequest, "too long"),
            ]
            for (body, status, what) in cases {
                expectProblem(try await client.request(.post, "/users", token: admin, json: body), status, what)
            }
            let wrongType = try await client.request(
                .post, "/users", token: admin, json: #"{"username":"x"}"#, headers: [.contentType: "text/plain"])
            expectProblem(wrongType, .unsupportedMediaType, "text/plain body")
            expectProblem(try await client.request(.get, "/users"), .unauthorized, "no token")
        }
    }
}
