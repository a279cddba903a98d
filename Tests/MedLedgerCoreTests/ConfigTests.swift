import Configuration
import Foundation
import MedLedgerCore
import TestSupport
import Testing

@Suite struct ConfigTests {
    @Test func defaultsWorkLocally() throws {
        let config = try CommonConfig(reader: testConfig([:]), defaultPort: 8085, defaultDatabase: "ledger")
        #expect(config.port == 8085)
        #expect(config.database.database == "ledger")
        #expect(config.jwksURL.absoluteString == "http://127.0.0.1:8081/.well-known/jwks.json")
        #expect(config.issuer == "http://127.0.0.1:8081")
        #expect(config.mode == .development)
    }

    @Test(arguments: [
        (["HTTP_PORT": "80a"], "HTTP_PORT=80a"), (["HTTP_PORT": "70000"], "HTTP_PORT=70000"), (["MEDLEDGER_ENV": "prod"], "MEDLEDGER_ENV=prod"),
        (["DATABASE_URL": "mysql://x/y"], "DATABASE_URL"), (["DATABASE_URL": "postgres://u@h/db?sslmode=maybe"], "sslmode=maybe"),
        (["MEDLEDGER_ENV": "production", "DATABASE_URL": "postgres://u@h/db"], "production mode requires"),
        (["MEDLEDGER_ENV": "production", "DATABASE_URL": "postgres://u:p@h/db", "JWKS_URL": "file:///tmp/jwks.json"], "file: URL"),
        (["LOG_LEVEL": "loud"], "LOG_LEVEL=loud"),
    ] as [([String: String], String)])
    func malformedValuesAreClearStartupErrors(_ variables: [String: String], _ mention: String) {
        #expect {
            _ = try CommonConfig(reader: testConfig(variables), defaultPort: 8085, defaultDatabase: "ledger")
        } throws: { error in
            (error as? ConfigError)?.message.contains(mention) == true
        }
    }
}
