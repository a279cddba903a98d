import Foundation
import MedLedgerCore

/// Who did something: an account, a client, or someone who only typed a username.
struct AuditAgent: Sendable {
    var userID: UUID?
    var username: String?
    var fhirUser: String?
    var clientID: String?
    var address: String

    static func user(_ user: UserRecord, address: String) -> AuditAgent {
        AuditAgent(userID: user.id, username: user.username, fhirUser: user.fhirUser, address: address)
    }

    var json: JSONValue {
        var who: [(key: String, value: JSONValue)] = []
        if let fhirUser { who.append(("reference", .string(fhirUser))) }
        if let userID {
            who.append(("identifier", .object([("system", .string(AuditEventParts.userSystem)), ("value", .string(userID.uuidString.lowercased()))])))
        } else if let clientID {
            who.append(("identifier", .object([("system", .string(AuditEventParts.clientSystem)), ("value", .string(clientID))])))
        }
        var members: [(key: String, value: JSONValue)] = []
        if !who.isEmpty {
            if let username, userID != nil { who.append(("display", .string(username))) }
            members.append(("who", .object(who)))
        }
        // An unknown account: only what was typed, cut short (it might be a mistyped password).
        // Control characters become "?": the outbox is text, and PostgreSQL text cannot hold NUL.
        if userID == nil, let username {
            let printable = String(String.UnicodeScalarView(username.unicodeScalars.prefix(64).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
            members.append(("altId", .string(printable)))
        }
        members.append(("requestor", .bool(true)))
        members.append(("network", .object([("address", .string(address)), ("type", .string("2"))])))
        return .object(members)
    }
}

/// What identity tells the audit service, as FHIR R4 AuditEvents (DICOM audit codes).
struct IdentityAuditEvent: Sendable {
    enum Kind: String, Sendable {
        case login
        case logout
        case loginFailed = "login-failed"
        case lockout
        case refreshTokenReuse = "refresh-token-reuse"
        case passwordChanged = "password-changed"
        case accountCreated = "account-created"
        case accountChanged = "account-changed"
        case clientCreated = "client-created"
        case clientChanged = "client-changed"
    }

    enum Outcome: String, Sendable {
        case success = "0"
        case minorFailure = "4"
        case seriousFailure = "8"
    }

    var kind: Kind
    var outcome: Outcome = .success
    var detail: String?
    var agent: AuditAgent
    /// The account or client acted upon, for changes.
    var entity: (system: String, id: String, display: String?)?
    /// `Patient/x` when the account acted upon is a patient's: their audit view shows it.
    var patient: String?
    var sessionID: UUID?
    var changes: [String] = []

    /// Its `audit_outbox` row, inserted in the transaction of what it describes.
    var row: AuditOutboxRow { AuditOutboxRow(service: "identity", event: AuditEventBuilder.resource(self, recorded: Date())) }
}

enum AuditEventBuilder {
    static func resource(_ event: IdentityAuditEvent, recorded: Date) -> JSONValue {
        let (coding, dicom) = (AuditEventParts.coding, AuditEventParts.dicom)
        let authentication: Bool
        let subtype: JSONValue
        let action: String
        switch event.kind {
        case .login, .loginFailed, .lockout, .refreshTokenReuse:
            (authentication, action, subtype) = (true, "E", coding(dicom, "110122", "Login"))
        case .logout:
            (authentication, action, subtype) = (true, "E", coding(dicom, "110123", "Logout"))
        case .accountCreated, .clientCreated:
            (authentication, action, subtype) = (false, "C", AuditEventParts.restfulInteraction("create"))
        case .accountChanged, .clientChanged, .passwordChanged:
            (authentication, action, subtype) = (false, "U", AuditEventParts.restfulInteraction("update"))
        }
        var members: [(key: String, value: JSONValue)] = [
            ("resourceType", .string("AuditEvent")),
            ("type", authentication ? coding(dicom, "110114", "User Authentication") : coding(dicom, "110137", "User Security Attributes Changed")),
            ("subtype", .array([subtype])),
            ("action", .string(action)),
            ("recorded", .string(Timestamp.rfc3339(recorded))),
            ("outcome", .string(event.outcome.rawValue)),
        ]
        members.append(("outcomeDesc", .string(event.detail ?? event.kind.rawValue)))
        members.append(("agent", .array([event.agent.json])))
        members.append(("source", AuditEventParts.source(site: "medledger-identity", type: ("6", "Security Server"))))
        var details: [JSONValue] = [.object([("type", .string("event")), ("valueString", .string(event.kind.rawValue))])]
        if let sessionID = event.sessionID {
            details.append(.object([("type", .string("session")), ("valueString", .string(sessionID.uuidString.lowercased()))]))
        }
        if !event.changes.isEmpty {
            details.append(.object([("type", .string("changes")), ("valueString", .string(event.changes.joined(separator: ", ")))]))
        }
        var entity: [(key: String, value: JSONValue)] = []
        if let target = event.entity {
            var what: [(key: String, value: JSONValue)] = [("identifier", .object([("system", .string(target.system)), ("value", .string(target.id))]))]
            if let display = target.display { what.append(("display", .string(display))) }
            entity.append(("what", .object(what)))
            let isClient = target.system == AuditEventParts.clientSystem
            entity.append(
                ("type", coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", isClient ? "2" : "1", isClient ? "System Object" : "Person"))
            )
        }
        entity.append(("detail", .array(details)))
        members.append(("entity", .array([.object(entity)] + (event.patient.map { [AuditEventParts.patientEntity($0)] } ?? []))))
        return .object(members)
    }
}

enum Timestamp {
    static func rfc3339(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
