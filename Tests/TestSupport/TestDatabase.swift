import Foundation
import Logging
import PostgresNIO

/// Each suite gets its own database in the throwaway cluster the test command starts
/// (`TEST_DATABASE_URL`); suites run in parallel and never see each other's rows.
public enum TestDatabase {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "TEST_DATABASE_URL is not set: run the tests with deploy/local/test, which starts a throwaway PostgreSQL"
        }
    }

    /// Creates a fresh, uniquely named database and returns its URL.
    public static func create(prefix: String) async throws -> String {
        guard let base = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], var components = URLComponents(string: base) else {
            throw Missing()
        }
        let name = "\(prefix.lowercased().filter { $0.isLetter || $0.isNumber })_\(UUID().uuidString.prefix(8).lowercased())"
        let admin = PostgresClient(configuration: try clientConfiguration(components))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await admin.run() }
            // The name is made of [a-z0-9_] only, so it is safe as an identifier.
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "test-db"))
            group.cancelAll()
        }
        components.path = "/" + name
        return components.string!
    }

    static func clientConfiguration(_ components: URLComponents) throws -> PostgresClient.Configuration {
        PostgresClient.Configuration(
            host: components.host ?? "127.0.0.1",
            port: components.port ?? 5432,
            username: components.user ?? "postgres",
            password: components.password,
            database: String(components.path.dropFirst()),
            tls: .disable
        )
    }
}
