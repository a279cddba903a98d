import Crypto
import Foundation

/// AES-256-GCM for stored bodies. The associated data binds a ciphertext to its place
/// (`Type/id/_history/vid` plus a purpose), so rows cannot be swapped between resources.
enum ResourceCipher {
    static func seal(_ plaintext: [UInt8], key: SymmetricKey, context: String) throws -> [UInt8] {
        Array(try AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8)).combined!)
    }

    static func open(_ sealed: [UInt8], key: SymmetricKey, context: String) throws -> [UInt8] {
        Array(try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key, authenticating: Array(context.utf8)))
    }

    static func versionContext(_ type: ResourceType, _ id: String, _ version: Int) -> String {
        "\(type.rawValue)/\(id)/_history/\(version)"
    }
}

/// Binary content in 64 KiB chunks (design guide, "Integrity and privacy"): the nonce is a
/// random per-version prefix and the chunk counter, and the associated data names the version,
/// the chunk index and whether it is the last, so chunks cannot be reordered or cut off.
struct ChunkCipher: Sendable {
    static let chunkSize = 64 * 1024

    let key: SymmetricKey
    let noncePrefix: [UInt8]
    let context: String

    init(key: SymmetricKey, context: String, noncePrefix: [UInt8]? = nil) {
        self.key = key
        self.context = context
        self.noncePrefix = noncePrefix ?? (0..<8).map { _ in UInt8.random(in: .min ... .max) }
    }

    func seal(_ chunk: some DataProtocol, index: Int, last: Bool) throws -> [UInt8] {
        let sealed = try AES.GCM.seal(chunk, using: key, nonce: try nonce(index), authenticating: associatedData(index, last: last))
        return Array(sealed.ciphertext) + Array(sealed.tag)
    }

    func open(_ sealed: [UInt8], index: Int, last: Bool) throws -> [UInt8] {
        guard sealed.count >= 16 else { throw CryptoKitError.incorrectParameterSize }
        let box = try AES.GCM.SealedBox(nonce: try nonce(index), ciphertext: sealed.dropLast(16), tag: sealed.suffix(16))
        return Array(try AES.GCM.open(box, using: key, authenticating: associatedData(index, last: last)))
    }

    private func nonce(_ index: Int) throws -> AES.GCM.Nonce {
        let counter = UInt32(index)
        return try AES.GCM.Nonce(data: noncePrefix + [UInt8(counter >> 24), UInt8(counter >> 16 & 0xff), UInt8(counter >> 8 & 0xff), UInt8(counter & 0xff)])
    }

    private func associatedData(_ index: Int, last: Bool) -> [UInt8] {
        Array("\(context)#chunk=\(index)#last=\(last ? 1 : 0)".utf8)
    }
}
