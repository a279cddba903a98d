import Foundation
import HTTPTypes
import Logging
import MedLedgerCore
import NIOCore

/// The real directory: Patients and Practitioners from records' FHIR API, Organizations (of
/// registered EHR systems) from identity, asked with consent's own service token.
struct HTTPDirectory: Directory {
    let client: ServiceClient
    let recordsURL: URL
    let identityURL: URL

    func exists(_ reference: String, logger: Logger) async throws -> Bool {
        // `.` and `..` are valid FHIR ids but path steps in a URL: they would name another path.
        guard reference.split(separator: "/").last?.contains(where: { $0 != "." }) == true else { return false }
        let url: URL
        let peer: String
        if reference.hasPrefix("Organization/") {
            url = identityURL.appendingPathComponent("organizations").appendingPathComponent(String(reference.dropFirst("Organization/".count)))
            peer = "identity"
        } else {
            url = recordsURL.appendingPathComponent("fhir").appendingPathComponent(reference)
            peer = "records"
        }
        let status: Int
        do {
            status = try await client.authorizedGet(url, timeout: .seconds(5)).status
        } catch {
            logger.warning("directory lookup failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
            throw Problem(.serviceUnavailable, "\(peer) could not be asked whether \(reference) exists; retry later")
        }
        switch status {
        case 200: return true
        // 410: deleted; neither can be granted anything.
        case 404, 410: return false
        default:
            logger.warning("directory lookup refused", metadata: ["peer": "\(peer)", "status": "\(status)"])
            throw Problem(.serviceUnavailable, "\(peer) answered \(status) when asked whether \(reference) exists; retry later")
        }
    }
}
