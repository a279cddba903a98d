import Foundation
import MedLedgerCore

/// A doctor's time-limited emergency access to one patient's reports, with the reason stated.
struct BreakGlassSession: Sendable {
    var id: String
    /// `Practitioner/x`
    var actor: String
    /// `Patient/y`
    var patient: String
    var reason: String
    var started: Date
    var expires: Date
    /// When its doctor ended it early (`ended_by` in the table names who).
    var ended: Date?

    /// `ended` once ended early, `expired` once its time is up, `active` meanwhile.
    func status(at now: Date) -> String {
        if ended != nil { return "ended" }
        return now >= expires ? "expired" : "active"
    }

    func json(at now: Date) -> JSONValue {
        .object([
            ("id", .string(id)), ("actor", .string(actor)), ("patient", .string(patient)), ("reason", .string(reason)),
            ("started", .string(FHIRDate.instantText(started))), ("expires", .string(FHIRDate.instantText(expires))),
            ("ended", ended.map { .string(FHIRDate.instantText($0)) } ?? .null), ("status", .string(status(at: now))),
        ])
    }

    /// Reasons are free text for the patient and auditors to read: long enough to say something.
    static let reasonLength = 10...2000
}
