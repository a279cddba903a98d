/// What the CapabilityStatements of MedLedger's FHIR servers share.
package enum CapabilityStatementParts {
    /// The members before `rest`: this server, FHIR R4 JSON, MedLedger as publisher.
    package static func header(software: String, description: String, base: String) -> [(key: String, value: JSONValue)] {
        [
            ("resourceType", .string("CapabilityStatement")),
            ("status", .string("active")),
            ("date", .string("2026-11-21")),
            ("publisher", .string("MedLedger")),
            ("kind", .string("instance")),
            ("software", .object([("name", .string(software))])),
            ("implementation", .object([("description", .string(description)), ("url", .string(base))])),
            ("fhirVersion", .string("4.0.1")),
            ("format", .array([.string("json"), .string("application/fhir+json")])),
        ]
    }

    /// `rest.security`: SMART on FHIR with identity's token endpoint.
    package static func smartSecurity(issuer: String) -> JSONValue {
        .object([
            (
                "extension",
                .array([
                    .object([
                        ("url", .string("http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris")),
                        ("extension", .array([.object([("url", .string("token")), ("valueUri", .string(issuer + "/auth/token"))])])),
                    ])
                ])
            ),
            (
                "service",
                .array([
                    .object([
                        (
                            "coding",
                            .array([
                                .object([
                                    ("system", .string("http://terminology.hl7.org/CodeSystem/restful-security-service")),
                                    ("code", .string("SMART-on-FHIR")),
                                ])
                            ])
                        )
                    ])
                ])
            ),
            (
                "description",
                .string("Bearer access tokens from the MedLedger identity service (SMART v2 scopes); see .well-known/smart-configuration")
            ),
        ])
    }

    /// The whole statement of a server of a few resource types: `rest` with `documentation`,
    /// SMART security and `resources`.
    package static func statement(
        software: String, description: String, base: String, issuer: String, documentation: String, resources: [JSONValue]
    ) -> JSONValue {
        let rest = JSONValue.object([
            ("mode", .string("server")),
            ("documentation", .string(documentation)),
            ("security", smartSecurity(issuer: issuer)),
            ("resource", .array(resources)),
        ])
        return .object(header(software: software, description: description, base: base) + [("rest", .array([rest]))])
    }

    /// A `rest.resource` without conditional interactions or update-as-create; a versioned
    /// type also reads its history.
    package static func resource(
        _ type: String, documentation: String, interactions: [String], versioned: Bool, searchParams: [(name: String, type: String)]
    ) -> JSONValue {
        .object([
            ("type", .string(type)),
            ("documentation", .string(documentation)),
            ("interaction", .array(interactions.map { .object([("code", .string($0))]) })),
            ("versioning", .string(versioned ? "versioned" : "no-version")),
            ("readHistory", .bool(versioned)),
            ("updateCreate", .bool(false)),
            ("conditionalCreate", .bool(false)),
            ("conditionalRead", .string("not-supported")),
            ("conditionalUpdate", .bool(false)),
            ("conditionalDelete", .string("not-supported")),
            ("searchParam", .array(searchParams.map { searchParam($0.name, type: $0.type) })),
        ])
    }

    /// `rest.resource.searchParam` entries: name and type (`token`, `date`, `reference`, …).
    package static func searchParam(_ name: String, type: String) -> JSONValue {
        .object([("name", .string(name)), ("type", .string(type))])
    }
}
