import Foundation
import MedLedgerCore

/// The FHIR R4 Provenance of one version: `target` the versioned reference, `recorded` when it
/// was written, `agent` who wrote it, and the ledger anchor as an extension (commitment, state,
/// leaf index, checkpoint size, log origin), so EHR systems see the anchor with plain FHIR.
/// Its id is the version's sequence number; it changes once, when the version is anchored
/// (meta.versionId 1 → 2).
enum ProvenanceResource {
    static let anchorExtension = "https://medledger.dev/fhir/StructureDefinition/ledger-anchor"

    static func make(_ v: AnchoredVersion) -> JSONValue {
        let anchored = v.leafIndex != nil && v.anchoredAt != nil
        let activity = v.deleted ? ("DELETE", "delete") : v.version == 1 ? ("CREATE", "create") : ("UPDATE", "revise")
        var anchor: [JSONValue] = []
        if let commitment = v.commitment { anchor.append(part("commitment", ("valueBase64Binary", .string(commitment.base64String)))) }
        anchor.append(part("status", ("valueCode", .string(anchored ? "anchored" : "pending"))))
        if anchored, let index = v.leafIndex { anchor.append(part("leafIndex", ("valueInteger", .number(String(index))))) }
        if anchored, let size = v.checkpointSize { anchor.append(part("checkpointSize", ("valueInteger", .number(String(size))))) }
        if anchored, let origin = v.logOrigin { anchor.append(part("logOrigin", ("valueString", .string(origin)))) }
        let recorded = FHIRDate.instantText(Micros.date(v.lastUpdated))
        return .object([
            ("resourceType", .string("Provenance")),
            ("id", .string(String(v.seq))),
            (
                "meta",
                .object([
                    ("versionId", .string(anchored ? "2" : "1")),
                    ("lastUpdated", .string(anchored ? FHIRDate.instantText(Micros.date(v.anchoredAt!)) : recorded)),
                ])
            ),
            ("extension", .array([.object([("url", .string(anchorExtension)), ("extension", .array(anchor))])])),
            ("target", .array([.object([("reference", .string(v.versionReference))])])),
            ("recorded", .string(recorded)),
            (
                "activity",
                .object([("coding", .array([coding("http://terminology.hl7.org/CodeSystem/v3-DataOperation", activity.0, activity.1)]))])
            ),
            (
                "agent",
                .array([
                    .object([
                        ("type", .object([("coding", .array([coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author")]))])),
                        ("who", who(v.writtenBy)),
                    ])
                ])
            ),
        ])
    }

    /// A Practitioner (or client Organization) as a reference; an account without a FHIR
    /// resource by its identity subject.
    private static func who(_ writer: String?) -> JSONValue {
        guard let writer else { return .object([("display", .string("unknown"))]) }
        if writer.hasPrefix("Practitioner/") || writer.hasPrefix("Organization/") || writer.hasPrefix("Patient/") {
            return .object([("reference", .string(writer))])
        }
        return .object([("display", .string(writer))])
    }

    private static func part(_ url: String, _ value: (key: String, value: JSONValue)) -> JSONValue {
        .object([("url", .string(url)), value])
    }

    private static func coding(_ system: String, _ code: String, _ display: String) -> JSONValue {
        .object([("system", .string(system)), ("code", .string(code)), ("display", .string(display))])
    }
}
