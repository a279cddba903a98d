public import Logging
public import PostgresNIO

/// Runs `body` with a client on `url`, for tests that inspect or tamper with rows directly.
public func withPostgres<T: Sendable>(_ url: String, _ body: (PostgresClient) async throws -> T) async throws -> T {
    guard let components = URLComponents(string: url) else { throw TestDatabase.Missing() }
    let client = PostgresClient(configuration: try TestDatabase.clientConfiguration(components))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}

public let testLogger = Logger(label: "test")

import Foundation
