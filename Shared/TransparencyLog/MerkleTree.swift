import Crypto

/// RFC 6962 / RFC 9162 Merkle tree hashing (SHA-256, leaf prefix 0x00, node prefix 0x01), so that
/// any standard verifier (Go's sumdb/tlog, transparency-dev) can check our proofs.
public enum MerkleTree {
    public static let hashSize = 32

    public static func leafHash(_ data: some Sequence<UInt8>) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        hasher.update(data: Array(data))
        return Array(hasher.finalize())
    }

    public static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: [0x01])
        hasher.update(data: left)
        hasher.update(data: right)
        return Array(hasher.finalize())
    }

    /// The root of the empty tree: SHA-256 of the empty string.
    public static let emptyRoot: [UInt8] = Array(SHA256.hash(data: [UInt8]()))

    /// The root over `hashes` taken as consecutive leaves (or nodes of one level), RFC 6962 MTH.
    public static func root(of hashes: ArraySlice<[UInt8]>) -> [UInt8] {
        switch hashes.count {
        case 0: return emptyRoot
        case 1: return hashes[hashes.startIndex]
        default:
            let k = largestPowerOfTwo(below: hashes.count)
            let mid = hashes.startIndex + k
            return nodeHash(root(of: hashes[hashes.startIndex..<mid]), root(of: hashes[mid...]))
        }
    }

    /// The largest power of two strictly less than `n` (n ≥ 2), RFC 6962's k.
    public static func largestPowerOfTwo(below n: Int) -> Int {
        precondition(n >= 2)
        return 1 << (Int.bitWidth - 1 - (n - 1).leadingZeroBitCount)
    }
}
