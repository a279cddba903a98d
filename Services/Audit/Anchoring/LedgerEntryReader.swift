import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Reads the ledger's public `GET /entries/{index}`: the entry's RFC 8785 bytes, exactly the
/// leaf data. No token is needed, so chain verification confirms anchors even where audit has
/// no service credentials.
struct LedgerEntryReader: Sendable {
    let ledgerURL: URL

    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    /// The entry's bytes, or nil when the ledger has no entry at `index`; throws when the ledger
    /// cannot be asked. A small read: a ledger that has not answered in 5 s counts as unreachable
    /// (the HTTP client keeps retrying a refused connection until then).
    func entry(_ index: Int64) async throws -> [UInt8]? {
        let url = ledgerURL.appendingPathComponent("entries/\(index)")
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url.absoluteString), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        switch response.status.code {
        case 200: return Array(body.readableBytesView)
        case 404: return nil
        default: throw Unavailable(description: "\(url) answered \(response.status.code)")
        }
    }
}
