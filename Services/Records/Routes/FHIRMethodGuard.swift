import HTTPTypes
import Hummingbird
import MedLedgerCore

/// 405 for a method a FHIR path does not take (Hummingbird's router would answer 404).
enum FHIRMethodGuard {
    static let paths: [(path: RouterPath, allowed: [HTTPRequest.Method])] = [
        ("{type}", [.get, .post]),
        ("{type}/_search", [.post]),
        ("{type}/_history", [.get]),
        ("{type}/{id}", [.get, .put, .delete]),
        ("{type}/{id}/_history", [.get]),
        ("{type}/{id}/_history/{vid}", [.get]),
        ("metadata", [.get]),
    ]
    static let methods: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .head, .options]

    static func register(on group: RouterGroup<ServiceRequestContext>) {
        for (path, allowed) in paths {
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            for method in methods where !allowed.contains(method) {
                group.on(path, method: method) { _, _ -> Response in
                    throw Problem(.methodNotAllowed, "\(method.rawValue) is not allowed here (allowed: \(allow))", headers: [.allow: allow])
                }
            }
        }
    }
}
