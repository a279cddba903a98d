/// What a stored Consent grants, as the `consents` columns hold it: who (`actor`) may read which
/// of a patient's reports (all, a category, or one report), for which period.
struct Grant: Sendable, Equatable {
    enum Scope: String, Sendable {
        case all, category, resource
    }

    /// Only `active` consents grant anything; the others are kept and searchable.
    var status: String
    /// `Patient/x`
    var patient: String
    /// `Practitioner/x` or `Organization/y` (an EHR system).
    var actor: String
    var scope: Scope
    /// A v2-0074 code (`LAB`, `RAD`, …) for scope `category`.
    var category: String?
    /// `DiagnosticReport/z` for scope `resource`.
    var resource: String?
    /// µs since 1970: the start of `provision.period.start`'s range and the end of its `end`'s
    /// (so an end of `2026-12-31` lasts the whole day); nil for an open end.
    var periodStart: Int64?
    var periodEnd: Int64?
}
