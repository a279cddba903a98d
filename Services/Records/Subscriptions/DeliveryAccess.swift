import Foundation
import Logging
import MedLedgerCore
import PostgresNIO

/// Whether a subscription's owner may read one report version now, decided when its
/// notification goes out: the owner's own rule (their report, their assigned patient, a
/// trusted EHR system), else consent asked afresh, so a revoked grant stops delivery at once
/// rather than after records' grant cache expires.
struct DeliveryAccess: Sendable {
    let consent: ServiceClient?
    let consentURL: URL

    enum Verdict: Sendable {
        case readable(StoredVersion, breakGlass: String?)
        case hidden(String)
    }

    struct ConsentUnavailable: Error, CustomStringConvertible {
        var description: String
    }

    static let timeout = TimeAmount.seconds(5)

    func check(_ owner: Caller, reportID: String, version: Int, on connection: PostgresConnection, logger: Logger) async throws -> Verdict {
        guard owner.scopes.contains(where: { $0.grants(.read, on: .diagnosticReport) }) else {
            return .hidden("the subscriber's scopes do not allow reading DiagnosticReport")
        }
        let own = AccessRule.rule(for: owner, on: .diagnosticReport)
        if let stored = try await ResourceReads.version(.diagnosticReport, id: reportID, version: version, rule: own, on: connection, logger: logger) {
            return stored.deleted ? .hidden("the version is a deletion") : .readable(stored, breakGlass: nil)
        }
        guard let actor = owner.consentActor,
            let stored = try await ResourceReads.version(.diagnosticReport, id: reportID, version: version, rule: .all, on: connection, logger: logger),
            !stored.deleted, let patient = stored.patient
        else { return .hidden("the subscriber may not read it") }
        let categories = try await connection.query(
            "SELECT DISTINCT code FROM search_index WHERE type = 'DiagnosticReport' AND id = \(reportID) AND param = 'category' AND code IS NOT NULL",
            logger: logger
        ).collect().map { try $0.decode(String.self) }
        let basis = try await decide(actor: actor, patient: patient, resource: "DiagnosticReport/\(reportID)", categories: categories, logger: logger)
        guard let basis else { return .hidden("no consent grants the subscriber this report") }
        return .readable(stored, breakGlass: basis.hasPrefix("break-glass/") ? basis : nil)
    }

    /// Consent's `POST /decisions` (design guide contract): the basis of a permit, nil for deny.
    private func decide(actor: String, patient: String, resource: String, categories: [String], logger: Logger) async throws -> String? {
        guard let consent else { return nil }
        let request = JSONValue.object([
            ("actor", .string(actor)), ("patient", .string("Patient/\(patient)")), ("action", .string("read")), ("resource", .string(resource)),
            ("category", .array(categories.map(JSONValue.string))),
        ])
        let answer: JSONValue
        do {
            answer = try await consent.post(consentURL.appendingPathComponent("decisions"), json: request, timeout: Self.timeout, logger: logger)
        } catch {
            throw ConsentUnavailable(description: "consent could not be asked: \(error)")
        }
        switch answer["decision"]?.stringValue {
        case "permit": return answer["basis"]?.stringValue ?? "consent"
        case "deny": return nil
        default: throw ConsentUnavailable(description: "consent's decision has not the contract's shape")
        }
    }
}
