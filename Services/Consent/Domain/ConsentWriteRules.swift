import Foundation
import Logging
import MedLedgerCore

/// Who may write which consent, and what is stored: patients record their own, receptionists
/// any patient's on the patient's behalf (named in `recorded-by`); the patient and actor named
/// must exist.
struct ConsentWriteRules {
    let deps: ConsentDependencies
    let caller: Caller
    let logger: Logger

    static let recordedByExtension = "https://medledger.dev/fhir/StructureDefinition/recorded-by"

    /// The grant `resource` makes, if this caller may write it; `previous`: the version it replaces.
    func check(_ resource: JSONValue, previous: StoredConsent?) async throws -> Grant {
        let grant = try ConsentRules.grant(from: resource)
        switch caller.role {
        case .patient:
            guard let own = caller.fhirUserID("Patient"), grant.patient == "Patient/\(own)" else {
                throw Problem.forbidden("a patient grants access to their own records only (patient must be your own Patient reference)")
            }
        case .receptionist:
            if grant.patient != previous?.patient { try await deps.directory?.require(grant.patient, expression: "Consent.patient", logger: logger) }
        default:
            throw Problem.forbidden("consents are recorded by the patient, or by a receptionist on the patient's behalf")
        }
        // An unchanged actor is not looked up again: revoking a consent must work even when its actor has gone.
        if grant.actor != previous?.actor {
            try await deps.directory?.require(grant.actor, expression: "Consent.provision.actor[0].reference", logger: logger)
        }
        return grant
    }

    /// The body to store: the resource stamped with its id and version, with a `recorded-by`
    /// extension naming the receptionist who recorded it (any sent by the client is dropped).
    func stored(_ resource: JSONValue, id: String, version: Int, lastUpdated: Date) -> String {
        var extensions = (resource["extension"]?.arrayValue ?? []).filter { $0["url"]?.stringValue != Self.recordedByExtension }
        if caller.role == .receptionist {
            let who: JSONValue = caller.fhirUser.map { .object([("reference", .string($0))]) } ?? .object([("display", .string(caller.author))])
            extensions.append(.object([("url", .string(Self.recordedByExtension)), ("valueReference", who)]))
        }
        let marked = ResourceStamp.setting("extension", to: extensions.isEmpty ? nil : .array(extensions), in: resource)
        let stamped = ResourceStamp.stamp(marked, type: ConsentAccess.resourceType, id: id, version: version, lastUpdated: lastUpdated)
        return String(decoding: stamped.serialized(), as: UTF8.self)
    }
}
