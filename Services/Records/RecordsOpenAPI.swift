import Foundation
import MedLedgerCore

/// The published contract (openapi/records.yaml), bundled as a resource and served at /openapi.yaml.
enum RecordsOpenAPI {
    /// Read at startup: a build without its resource bundle must not start.
    static func load() throws(ConfigError) -> String {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { throw ConfigError("the OpenAPI document is missing from the MedLedger_Records.resources bundle") }
        return text
    }
}
