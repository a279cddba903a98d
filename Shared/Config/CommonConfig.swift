public import Configuration
public import Foundation
public import Logging

public enum DeploymentMode: String, CaseIterable, Sendable {
    case production
    case development
}

/// The settings every service shares (design guide, "Config"), read once at startup.
public struct CommonConfig: Sendable {
    public var host: String
    public var port: Int
    public var mode: DeploymentMode
    public var logLevel: Logger.Level
    public var database: DatabaseConfig
    public var identityURL: URL
    /// Where the audit service takes events (`AUDIT_URL`): identity, records and consent deliver
    /// their audit outboxes to `AUDIT_URL/events`.
    public var auditURL: URL
    public var issuer: String
    public var audience: String
    public var jwksURL: URL
    /// Largest request body a service accepts by default.
    public var maxBodyBytes: Int
    /// This service's own OAuth client (`OAUTH_CLIENT_ID`/`OAUTH_CLIENT_SECRET`), for calls to its peers.
    public var serviceCredentials: ServiceTokenClient.Credentials?

    public init(reader: ConfigReader, defaultPort: Int, defaultDatabase: String) throws(ConfigError) {
        host = reader.text("http.host", default: "127.0.0.1")!
        port = try reader.integer("http.port", default: defaultPort, range: 1...65535)
        mode = try reader.choice("medledger.env", default: .development)
        logLevel = try reader.choice("log.level", default: .info)
        database = try DatabaseConfig(url: reader.text("database.url", default: "postgres://medledger@127.0.0.1:5432/\(defaultDatabase)", secret: true)!)
        identityURL = try reader.url("identity.url", default: "http://127.0.0.1:8081")
        issuer = reader.text("identity.issuer", default: identityURL.absoluteString)!
        auditURL = try reader.url("audit.url", default: "http://127.0.0.1:8084")
        audience = reader.text("medledger.audience", default: "medledger")!
        jwksURL = try reader.url("jwks.url", default: identityURL.appendingPathComponent(".well-known/jwks.json").absoluteString)
        maxBodyBytes = try reader.integer("max.body.bytes", default: 16 << 20, range: 1024...(1 << 30))
        if let id = reader.text("oauth.client.id") {
            guard let secret = reader.text("oauth.client.secret", secret: true) else {
                throw ConfigError("OAUTH_CLIENT_ID is set but OAUTH_CLIENT_SECRET is not")
            }
            serviceCredentials = .init(clientID: id, clientSecret: secret)
        }
        if jwksURL.isFileURL && mode == .production {
            throw ConfigError("JWKS_URL=\(jwksURL) is a file: URL, which only development mode accepts")
        }
        if mode == .production && database.password == nil {
            throw ConfigError("DATABASE_URL has no password; production mode requires one")
        }
    }
}
