import Foundation
import HTTPTypes
import Hummingbird
import MedLedgerCore

/// FHIRHTTP's version headers and write answers for records' stored versions.
extension FHIRHTTP {
    static func versionHeaders(_ stored: StoredVersion, base: String, location: Bool) -> HTTPFields {
        versionHeaders(version: stored.version, lastUpdated: stored.lastUpdatedDate, location: location ? "\(base)/\(stored.versionReference)" : nil)
    }

    static func writeResponse(_ written: WrittenVersion, status: HTTPResponse.Status, request: Request, base: String) -> Response {
        writeResponse(
            body: written.body ?? [], reference: written.stored.versionReference, headers: versionHeaders(written.stored, base: base, location: true),
            status: status, request: request)
    }

    static func resourceResponse(_ body: [UInt8], stored: StoredVersion, base: String) -> Response {
        Response(status: .ok, headers: versionHeaders(stored, base: base, location: false), body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
