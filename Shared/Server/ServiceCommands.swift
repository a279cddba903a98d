public import ArgumentParser
public import Configuration
public import Hummingbird
import NIOCore
import NIOPosix

/// What a service executable tells the shared `serve` and `healthcheck` commands.
public protocol ServiceExecutable {
    associatedtype App: ApplicationProtocol
    static var defaultPort: Int { get }
    static func buildApplication(reader: ConfigReader) async throws -> App
}

/// `serve` (the default): run the service, configured by environment variables.
public struct ServeCommand<Service: ServiceExecutable>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "serve", abstract: "Run the service (configured by environment variables).")
    }

    public init() {}

    public func run() async throws {
        // Run Swift Concurrency's tasks on NIO's event loop threads, which Hummingbird and
        // PostgresNIO already use: every request otherwise hops between NIO's threads and the
        // concurrency pool several times, and on a 2-core machine those thread switches cost more
        // CPU than the request's own work. Done before the service starts any task.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        try await ServiceRunner.serve { reader in try await Service.buildApplication(reader: reader) }
    }
}

/// `healthcheck`: for container health checks.
public struct HealthcheckCommand<Service: ServiceExecutable>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "healthcheck", abstract: "Exit 0 when this service's /health/ready answers 200.")
    }

    public init() {}

    public func run() async throws {
        try await ServiceRunner.healthcheck(defaultPort: Service.defaultPort)
    }
}
