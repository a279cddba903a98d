import Foundation

/// A file of this repository by its path from the root (tests run from any directory): the
/// calling test file sits at `Tests/<Target>/<file>.swift`.
public func repositoryFile(_ path: String, file: String = #filePath) -> String {
    URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(path).path
}
