public import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1

/// Reads a ledger's entries in order from its public entry bundles (c2sp.org/tlog-tiles
/// `tile/entries/…`: 256 entries each, each behind its 16-bit length), up to its latest
/// checkpoint. No token is needed. Records' `$verify-all` and audit's chain verification scan
/// the log this way: what the ledger holds is the record nobody with access to their own
/// database can change.
public struct LedgerEntryScan: Sendable {
    public let ledgerURL: URL
    public let httpClient: HTTPClient

    public init(ledgerURL: URL, httpClient: HTTPClient = .shared) {
        self.ledgerURL = ledgerURL
        self.httpClient = httpClient
    }

    public struct Failed: Error, CustomStringConvertible {
        public var description: String
    }

    /// The tree size of the ledger's latest checkpoint (its signature is not checked: what is
    /// read here is compared with what is stored, not trusted). A ledger that does not answer
    /// in 5 s counts as unreachable (the HTTP client retries a refused connection until then).
    public func treeSize() async throws -> Int64 {
        let note = String(buffer: try await get("checkpoint", timeout: .seconds(5)))
        return try Checkpoint.parse(body: SignedNote.parse(note).text).size
    }

    /// Calls `body` with each bundle's first leaf index and its entries, in order, up to `size`.
    public func forEachBundle(upTo size: Int64, _ body: (_ firstLeaf: Int64, _ entries: [[UInt8]]) async throws -> Void) async throws {
        let width = Int64(TilePath.width)
        var bundleIndex: Int64 = 0
        while bundleIndex * width < size {
            let count = Int(min(width, size - bundleIndex * width))
            let path = TilePath(level: nil, index: bundleIndex, partialWidth: count == TilePath.width ? nil : count).path
            var reader = try await get("tile/" + path, timeout: .seconds(30))
            var entries: [[UInt8]] = []
            entries.reserveCapacity(count)
            while let length = reader.readInteger(as: UInt16.self), let bytes = reader.readBytes(length: Int(length)) { entries.append(bytes) }
            try await body(bundleIndex * width, entries)
            bundleIndex += 1
        }
    }

    private func get(_ path: String, timeout: TimeAmount) async throws -> ByteBuffer {
        let url = ledgerURL.appendingPathComponent(path)
        let response = try await httpClient.execute(HTTPClientRequest(url: url.absoluteString), timeout: timeout)
        let body = try await response.body.collect(upTo: 16 << 20)
        guard response.status == .ok else { throw Failed(description: "\(url.path) answered \(response.status.code)") }
        return body
    }
}
