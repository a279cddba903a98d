/// The discovery documents of identity (RFC 8414 at `/.well-known/openid-configuration`, SMART
/// App Launch 2.0 at `/.well-known/smart-configuration`). Records serves the SMART one at its FHIR
/// base too, and it must be identical, so both build it here from the issuer alone.
public enum AuthorizationServerMetadata {
    public static let grantTypes = ["password", "client_credentials", "refresh_token"]

    public static func openIDConfiguration(issuer: String) -> JSONValue {
        .object([
            ("issuer", .string(issuer)),
            ("token_endpoint", .string(issuer + "/auth/token")),
            ("jwks_uri", .string(issuer + "/.well-known/jwks.json")),
            ("grant_types_supported", .array(grantTypes.map(JSONValue.string))),
            // "none": the password grant accepts first-party apps without a client secret.
            ("token_endpoint_auth_methods_supported", .array(["client_secret_basic", "client_secret_post", "none"].map(JSONValue.string))),
            ("scopes_supported", .array(Scope.supported.map(JSONValue.string))),
            // No authorization endpoint: no browser flows, so no response types.
            ("response_types_supported", .array([])),
            (
                "claims_supported",
                .array(["iss", "sub", "aud", "exp", "iat", "jti", "sid", "role", "fhirUser", "scope", "trusted"].map(JSONValue.string))
            ),
            ("service_documentation", .string(issuer + "/openapi.yaml")),
        ])
    }

    public static func smartConfiguration(issuer: String) -> JSONValue {
        .object([
            ("issuer", .string(issuer)),
            ("jwks_uri", .string(issuer + "/.well-known/jwks.json")),
            ("token_endpoint", .string(issuer + "/auth/token")),
            ("grant_types_supported", .array(grantTypes.map(JSONValue.string))),
            ("token_endpoint_auth_methods_supported", .array(["client_secret_basic", "client_secret_post"].map(JSONValue.string))),
            ("scopes_supported", .array(Scope.supported.map(JSONValue.string))),
            ("response_types_supported", .array([])),
            ("capabilities", .array(["client-confidential-symmetric", "permission-v2"].map(JSONValue.string))),
            ("code_challenge_methods_supported", .array([])),
        ])
    }
}
