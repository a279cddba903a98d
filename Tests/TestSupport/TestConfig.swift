public import Configuration

/// A config reader over explicit environment variables (the same names the services read).
public func testConfig(_ variables: [String: String]) -> ConfigReader {
    ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: variables))
}
