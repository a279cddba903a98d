package import HTTPTypes
package import Hummingbird

/// 405 for a method a path does not take (Hummingbird's router would answer 404), with `Allow`.
package enum MethodGuard {
    static let methods: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .head, .options]

    /// `paths`: each path of `group` and the methods it takes.
    package static func register(on group: RouterGroup<ServiceRequestContext>, paths: [(path: RouterPath, allowed: [HTTPRequest.Method])]) {
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
