import AsyncHTTPClient
public import Configuration
import Foundation
public import Hummingbird
import Logging
import Metrics
import NIOHTTP1
import Prometheus

/// What every service executable does in `main`: bootstrap logging and metrics once, build the
/// app from environment variables, run it until SIGTERM/SIGINT (graceful shutdown through
/// swift-service-lifecycle); and the `healthcheck` subcommand for container health checks.
public enum ServiceRunner {
    public static func serve<App: ApplicationProtocol>(_ build: (ConfigReader) async throws -> App) async throws {
        let reader = ConfigReader(provider: EnvironmentVariablesProvider())
        do {
            let format: LogFormat = try reader.choice("log.format", default: .text)
            let level: Logger.Level = try reader.choice("log.level", default: .info)
            LogSetup.bootstrap(format: format, level: level)
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: MetricsRegistry.shared))
            let app = try await build(reader)
            try await app.runService()
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("configuration error: \(error.message)\n".utf8))
            throw ExitCode(2)
        }
    }

    /// GET the service's own `/health/ready`; exit 0 when ready, 1 otherwise.
    public static func healthcheck(defaultPort: Int) async throws {
        let reader = ConfigReader(provider: EnvironmentVariablesProvider())
        let port = (try? reader.integer("http.port", default: defaultPort, range: 1...65535)) ?? defaultPort
        var host = reader.text("http.host", default: "127.0.0.1")!
        if host == "0.0.0.0" || host == "::" { host = "127.0.0.1" }
        let url = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)/health/ready"
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
            guard response.status == .ok else {
                print("not ready: \(url) answered \(response.status.code)")
                throw ExitCode(1)
            }
            print("ready: \(url)")
        } catch let exit as ExitCode {
            throw exit
        } catch {
            print("not ready: \(url): \(error)")
            throw ExitCode(1)
        }
    }
}

public import ArgumentParser
