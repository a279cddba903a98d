public import Configuration
public import Foundation

/// Typed, validated reads. swift-configuration quietly falls back to the default when a value
/// cannot be converted; a service must instead refuse to start with a clear message, so every
/// value is read as text and parsed here. Keys use dots (`http.port`), read from `HTTP_PORT`.
extension ConfigReader {
    static func variableName(_ key: String) -> String {
        key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    public func text(_ key: String, default defaultValue: String? = nil, secret: Bool = false) -> String? {
        let value = string(forKey: ConfigKey(key), isSecret: secret)
        if let value, !value.isEmpty { return value }
        return defaultValue
    }

    public func requiredText(_ key: String, secret: Bool = false) throws(ConfigError) -> String {
        guard let value = text(key, secret: secret) else {
            throw ConfigError("\(Self.variableName(key)) is required but not set")
        }
        return value
    }

    public func integer(_ key: String, default defaultValue: Int, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let raw = text(key) else { return defaultValue }
        guard let value = Int(raw.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw ConfigError("\(Self.variableName(key))=\(raw) is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    public func url(_ key: String, default defaultValue: String) throws(ConfigError) -> URL {
        let raw = text(key, default: defaultValue)!
        guard let url = URL(string: raw), let scheme = url.scheme, ["http", "https", "file"].contains(scheme) else {
            throw ConfigError("\(Self.variableName(key))=\(raw) is not an http(s) URL")
        }
        return url
    }

    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, default defaultValue: T) throws(ConfigError) -> T
    where T.RawValue == String {
        guard let raw = text(key) else { return defaultValue }
        guard let value = T(rawValue: raw.lowercased()) else {
            throw ConfigError("\(Self.variableName(key))=\(raw) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }
}
