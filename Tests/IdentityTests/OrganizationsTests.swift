import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MedLedgerCore
import Testing

@Suite struct OrganizationsTests {
    @Test func enabledEHRSystemsAreListedByOrganization() async throws {
        let fixture = try await IdentityFixture.make("organizations")
        try await fixture.app().test(.router) { client in
            let admin = try await client.adminToken()
            for (id, name, organization) in [("ehr-b", "EHR West B", "Organization/west"), ("ehr-a", "EHR West A", "Organization/west"),
                ("ehr-east", "EHR East", "Organization/east"), ("ehr-none", "No org", nil)]
            {
                let org = organization.map { #","organization":"\#($0)""# } ?? ""
                let created = try await client.request(
                    .post, "/clients", token: admin, json: #"{"clientId":"\#(id)","name":"\#(name)","role":"system","scopes":["system/*.rs"]\#(org)}"#)
                #expect(created.status == .created)
            }
            let secret = IdentityFixture.clientSecret
            let service = try parseTokens(
                try await client.form("grant_type=client_credentials", headers: [.authorization: "Basic " + Array("ledger-writer:\(secret)".utf8).base64String]))

            let list = try json(try await client.request(.get, "/organizations", token: admin))["organizations"]?.arrayValue ?? []
            #expect(list.map { $0["reference"]?.stringValue } == ["Organization/east", "Organization/west"])
            #expect(list.map { $0["name"]?.stringValue } == ["EHR East", "EHR West A"])
            let one = try await client.request(.get, "/organizations/west", token: service.access)
            #expect(one.status == .ok)
            #expect(try json(one)["reference"]?.stringValue == "Organization/west")

            expectProblem(try await client.request(.get, "/organizations/nowhere", token: service.access), .notFound, "unknown organization")
            #expect(try await client.request(.patch, "/clients/ehr-east", token: admin, json: #"{"disabled":true}"#).status == .ok)
            expectProblem(try await client.request(.get, "/organizations/east", token: admin), .notFound, "disabled client's organization")
            expectProblem(try await client.request(.get, "/organizations"), .unauthorized, "no token")
        }
    }
}
