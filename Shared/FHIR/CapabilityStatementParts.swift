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

    /// `rest.resource.searchParam` entries: name and type (`token`, `date`, `reference`, …).
    package static func searchParam(_ name: String, type: String) -> JSONValue {
        .object([("name", .string(name)), ("type", .string(type))])
    }
}
