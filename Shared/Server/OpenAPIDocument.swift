package import Foundation

/// A service's published contract (openapi/<service>.yaml), bundled as a resource of its
/// target and served at /openapi.yaml.
package enum OpenAPIDocument {
    /// `bundle`: the service target's `Bundle.module`. Read at startup: a build without its
    /// resource bundle must not start.
    package static func load(from bundle: Bundle) throws(ConfigError) -> String {
        guard let url = bundle.url(forResource: "openapi", withExtension: "yaml"), let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw ConfigError("the OpenAPI document is missing from the \(bundle.bundleURL.lastPathComponent) bundle")
        }
        return text
    }
}
