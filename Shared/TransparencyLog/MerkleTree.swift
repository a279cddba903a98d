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

    /// The root of a complete subtree from its 2^k hashes, concatenated (as tiles store them).
    /// Hashes pairs in place, level by level, without allocating per hash: proofs compute many of these.
    public static func completeRoot(ofConcatenated hashes: ArraySlice<UInt8>) -> [UInt8] {
        var buffer = Array(hashes)
        var count = buffer.count / hashSize
        precondition(count > 0 && count & (count - 1) == 0 && buffer.count == count * hashSize)
        buffer.withUnsafeMutableBytes { bytes in
            while count > 1 {
                for pair in 0..<count / 2 {
                    var hasher = SHA256()
                    withUnsafeBytes(of: UInt8(0x01)) { hasher.update(bufferPointer: $0) }
                    hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[pair * 2 * hashSize..<(pair + 1) * 2 * hashSize]))
                    hasher.finalize().withUnsafeBytes { digest in
                        UnsafeMutableRawBufferPointer(rebasing: bytes[pair * hashSize..<(pair + 1) * hashSize]).copyMemory(from: digest)
                    }
                }
                count /= 2
            }
        }
        return Array(buffer.prefix(hashSize))
    }

    /// The largest power of two strictly less than `n` (n ≥ 2), RFC 6962's k.
    public static func largestPowerOfTwo(below n: Int) -> Int {
        precondition(n >= 2)
        return 1 << (Int.bitWidth - 1 - (n - 1).leadingZeroBitCount)
    }
}
