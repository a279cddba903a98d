import Foundation
import HTTPTypes
import HummingbirdTesting
import MedLedgerCore
import TestSupport
import Testing

/// AuditEvents shaped as identity, records and consent write them.
enum AuditSample {
    static let dicom = AuditEventParts.dicom

    /// Someone (`who`: their fhirUser, `account`: their account id) as the requesting agent.
    static func agent(_ who: String?, account: String? = nil) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        if let who { members.append(("reference", .string(who))) }
        if let account {
            members.append(("identifier", .object([("system", .string(AuditEventParts.userSystem)), ("value", .string(account))])))
        }
        return .object([("who", .object(members)), ("requestor", .bool(true))])
    }

    /// A records or consent interaction (`read`, `create`, `search-type`, …) on `entity`
    /// (`Type/id/_history/n`) about `patient`.
    static func rest(
        _ interaction: String, action: String, agent who: String, account: String? = nil, entity: String? = nil, patient: String?,
        recorded: String, outcome: String = "0", breakGlass: Bool = false
    ) -> JSONValue {
        var entities: [JSONValue] = []
        if let entity { entities.append(AuditEventParts.resourceEntity(entity)) }
        if let patient { entities.append(AuditEventParts.patientEntity(patient)) }
        var members: [(key: String, value: JSONValue)] = [
            ("resourceType", .string("AuditEvent")),
            ("type", AuditEventParts.restType),
            ("subtype", .array([AuditEventParts.restfulInteraction(interaction)])),
            ("action", .string(action)),
            ("recorded", .string(recorded)),
            ("outcome", .string(outcome)),
        ]
        if breakGlass { members.append(("purposeOfEvent", .array([.object([("coding", .array([AuditEventParts.breakTheGlass]))])]))) }
        members += [
            ("agent", .array([agent(who, account: account)])),
            ("source", AuditEventParts.source(site: "medledger-records", type: ("4", "Application Server"))),
        ]
        if !entities.isEmpty { members.append(("entity", .array(entities))) }
        return .object(members)
    }

    /// An identity event of `account`: DICOM 110114 with subtype 110122 login or 110123 logout.
    static func authentication(
        _ subtype: (code: String, display: String), account: String, who: String?, recorded: String, outcome: String = "0"
    ) -> JSONValue {
        .object([
            ("resourceType", .string("AuditEvent")),
            ("type", AuditEventParts.coding(dicom, "110114", "User Authentication")),
            ("subtype", .array([AuditEventParts.coding(dicom, subtype.code, subtype.display)])),
            ("action", .string("E")),
            ("recorded", .string(recorded)),
            ("outcome", .string(outcome)),
            ("agent", .array([agent(who, account: account)])),
            ("source", AuditEventParts.source(site: "medledger-identity", type: ("6", "Security Server"))),
        ])
    }

    static let login = (code: "110122", display: "Login")
    static let logout = (code: "110123", display: "Logout")

    /// An admin's creation of the account `account` (DICOM 110137, the account as entity).
    static func accountCreated(_ account: String, by admin: String, recorded: String) -> JSONValue {
        let what = JSONValue.object([("identifier", .object([("system", .string(AuditEventParts.userSystem)), ("value", .string(account))]))])
        return .object([
            ("resourceType", .string("AuditEvent")),
            ("type", AuditEventParts.coding(dicom, "110137", "User Security Attributes Changed")),
            ("subtype", .array([AuditEventParts.restfulInteraction("create")])),
            ("action", .string("C")),
            ("recorded", .string(recorded)),
            ("outcome", .string("0")),
            ("agent", .array([agent(nil, account: admin)])),
            ("source", AuditEventParts.source(site: "medledger-identity", type: ("6", "Security Server"))),
            ("entity", .array([.object([("what", what)])])),
        ])
    }
}

extension AuditFixture {
    /// Delivers `events` through `POST /events` as a service's outbox does and returns their
    /// ids (chain sequence numbers), in order.
    func ingest(_ events: [JSONValue], client: some TestClientProtocol) async throws -> [String] {
        let items = events.map { (key: UUID().uuidString.lowercased(), event: $0.serializedString) }
        let answer = try await client.postEvents(items, token: try await writer())
        #expect(answer.status == .ok && answer.eventIDs.count == events.count, "POST /events answered \(answer.status): \(answer.text)")
        return answer.eventIDs
    }
}

extension TestClientProtocol {
    /// What a search by `token` (`query` with its `?`) matched, by the names `trail` gives the
    /// ids; the search must answer 200 with every match counted in its total.
    func names(_ query: String, token: String, trail: [String: String]) async throws -> Set<String> {
        let answer = try await send(.get, "/fhir/AuditEvent\(query)", token: token)
        #expect(answer.status == .ok, "\(query): \(answer.status) \(answer.text)")
        #expect(answer.total == answer.ids.count, "\(query)")
        return Set(answer.ids.map { found in trail.first { $0.value == found }?.key ?? found })
    }
}
