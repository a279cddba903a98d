import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import TestSupport
import Testing

@testable import Audit

@Suite struct OperationsTests {
    @Test func publicEndpointsAndPublishedContract() async throws {
        let fixture = try await AuditFixture.make("ops")
        try await fixture.app().test(.router) { client in
            for path in ["/health/live", "/health/ready", "/metrics", "/openapi.yaml"] {
                #expect(try await client.send(.get, path, token: nil).status == .ok, "\(path)")
            }
            let served = try await client.send(.get, "/openapi.yaml", token: nil).text
            #expect(served == (try String(contentsOfFile: repositoryFile("openapi/audit.yaml"), encoding: .utf8)))
        }
    }
}
