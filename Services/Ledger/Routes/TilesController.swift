import Hummingbird
import MedLedgerCore
import NIOCore

/// C2SP tlog-tiles static reads: hash tiles and entry bundles. The index spans several path
/// segments (x001/x234/067), hence the wildcard route.
struct TilesController {
    let tiles: TileStore
    let queries: LedgerQueries

    var endpoints: RouteCollection<ServiceRequestContext> {
        let routes = RouteCollection(context: ServiceRequestContext.self)
        routes.get("/tile/**") { _, context in
            let components = context.parameters.getCatchAll()
            guard let path = TilePath(components: components) else {
                throw Problem.notFound("not a tile path: tile/\(components.joined(separator: "/"))")
            }
            let bytes = try await path.level == nil ? entryBundle(path, context: context) : hashTile(path, context: context)
            let cacheControl = path.partialWidth == nil ? "public, max-age=31536000, immutable" : "public, max-age=60"
            return Response(
                status: .ok,
                headers: [.contentType: "application/octet-stream", .cacheControl: cacheControl],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes))
            )
        }
        return routes
    }

    func hashTile(_ path: TilePath, context: ServiceRequestContext) async throws -> [UInt8] {
        let key = TileKey(level: path.level!, index: path.index)
        let length = path.count * MerkleTree.hashSize
        guard let bytes = try await tiles.tiles([key: length], logger: context.logger)[key], bytes.count >= length else {
            throw Problem.notFound("tile/\(path.path) does not exist (yet)")
        }
        return Array(bytes.prefix(length))
    }

    /// Each entry as a big-endian 16-bit length followed by its bytes.
    func entryBundle(_ path: TilePath, context: ServiceRequestContext) async throws -> [UInt8] {
        let entries = try await queries.entries(from: path.index * Int64(TilePath.width), count: path.count, logger: context.logger)
        guard entries.count == path.count else { throw Problem.notFound("tile/\(path.path) does not exist (yet)") }
        var bundle: [UInt8] = []
        for entry in entries {
            bundle.append(UInt8(entry.count >> 8))
            bundle.append(UInt8(entry.count & 0xFF))
            bundle.append(contentsOf: entry)
        }
        return bundle
    }
}
