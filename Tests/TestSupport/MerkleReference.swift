import MedLedgerCore

/// A deliberately naive RFC 6962 implementation straight from the RFC's recursive definitions
/// (MTH, PATH, SUBPROOF over the whole leaf list), to check the production code against.
public enum MerkleReference {
    public static func root(_ leaves: ArraySlice<[UInt8]>) -> [UInt8] {
        if leaves.isEmpty { return MerkleTree.emptyRoot }
        if leaves.count == 1 { return MerkleTree.leafHash(leaves.first!) }
        let k = MerkleTree.largestPowerOfTwo(below: leaves.count)
        let mid = leaves.startIndex + k
        return MerkleTree.nodeHash(root(leaves[..<mid]), root(leaves[mid...]))
    }

    public static func path(_ m: Int, _ leaves: ArraySlice<[UInt8]>) -> [[UInt8]] {
        if leaves.count <= 1 { return [] }
        let k = MerkleTree.largestPowerOfTwo(below: leaves.count)
        let mid = leaves.startIndex + k
        if m < k { return path(m, leaves[..<mid]) + [root(leaves[mid...])] }
        return path(m - k, leaves[mid...]) + [root(leaves[..<mid])]
    }

    public static func consistency(_ m: Int, _ leaves: ArraySlice<[UInt8]>) -> [[UInt8]] {
        subproof(m, leaves, true)
    }

    private static func subproof(_ m: Int, _ leaves: ArraySlice<[UInt8]>, _ b: Bool) -> [[UInt8]] {
        if m == leaves.count { return b ? [] : [root(leaves)] }
        let k = MerkleTree.largestPowerOfTwo(below: leaves.count)
        let mid = leaves.startIndex + k
        if m <= k { return subproof(m, leaves[..<mid], b) + [root(leaves[mid...])] }
        return subproof(m - k, leaves[mid...], false) + [root(leaves[..<mid])]
    }

    public static func leaves(_ count: Int, salt: String = "") -> [[UInt8]] {
        (0..<count).map { Array("leaf \($0) \(salt)".utf8) }
    }
}
