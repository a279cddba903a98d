import Logging
import MedLedgerCore

/// Whether the Patients, Practitioners and Organizations a consent names exist. They live in
/// records and identity; tests use a fixed set instead, so this is a protocol.
protocol Directory: Sendable {
    /// True when `reference` (`Patient/x`, `Practitioner/x`, `Organization/x`) names one that
    /// exists; throws `Problem` 503 when the service holding it cannot be asked.
    func exists(_ reference: String, logger: Logger) async throws -> Bool
}

extension Directory {
    /// 422 unless `reference` exists; `expression` is the element that names it.
    func require(_ reference: String, expression: String, logger: Logger) async throws {
        guard try await exists(reference, logger: logger) else {
            let what = reference.hasPrefix("Patient/") ? "patient" : "actor"
            throw Problem.invalidResource([FHIRIssue(code: "invalid", diagnostics: "\(what) \(reference) does not exist", expression: expression)])
        }
    }
}
