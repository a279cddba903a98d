import MedLedgerCore

/// `GET /fhir/metadata`: exactly what records implements (FHIR R4 CapabilityStatement).
enum CapabilityStatement {
    static func resource(base: String, issuer: String) -> JSONValue {
        let resources: [JSONValue] = ResourceType.allCases.map { type in
            var interactions = ["create", "read", "vread", "update", "delete", "history-instance", "history-type", "search-type"]
            if type == .binary { interactions.removeAll { $0 == "update" } }
            var members: [(key: String, value: JSONValue)] = [
                ("type", .string(type.rawValue)),
                ("interaction", .array(interactions.map { .object([("code", .string($0))]) })),
                ("versioning", .string("versioned")),
                ("readHistory", .bool(true)),
                ("updateCreate", .bool(false)),
                ("conditionalCreate", .bool(type != .binary)),
                ("conditionalRead", .string("not-supported")),
                ("conditionalUpdate", .bool(false)),
                ("conditionalDelete", .string("not-supported")),
                ("searchParam", .array(SearchParameter.all(for: type).map(searchParam))),
            ]
            if type == .diagnosticReport { members.append(("searchInclude", .array([.string("DiagnosticReport:patient")]))) }
            members.append(("operation", .array([.object([("name", .string("verify")), ("definition", .string(verifyOperation))])])))
            return .object(members)
        } + [provenance]
        let rest = JSONValue.object([
            ("mode", .string("server")),
            ("security", CapabilityStatementParts.smartSecurity(issuer: issuer)),
            ("resource", .array(resources)),
        ])
        return .object(
            CapabilityStatementParts.header(software: "medledger-records", description: "MedLedger records", base: base) + [("rest", .array([rest]))])
    }

    /// `$verify` is MedLedger's own operation; its canonical URL names it (no OperationDefinition is served).
    static let verifyOperation = "https://medledger.dev/fhir/OperationDefinition/verify"

    /// Provenance: derived by records, one per version, read and searched only.
    private static let provenance: JSONValue = .object([
        ("type", .string("Provenance")),
        ("interaction", .array([.object([("code", .string("read"))]), .object([("code", .string("search-type"))])])),
        ("versioning", .string("no-version")),
        ("readHistory", .bool(false)),
        ("updateCreate", .bool(false)),
        (
            "searchParam",
            .array([
                CapabilityStatementParts.searchParam("target", type: "reference"),
                CapabilityStatementParts.searchParam("patient", type: "reference"),
            ])
        ),
    ])

    private static func searchParam(_ parameter: SearchParameter) -> JSONValue {
        let type: String
        switch parameter.kind {
        case .token: type = "token"
        case .string: type = "string"
        case .date: type = "date"
        case .reference: type = "reference"
        }
        return CapabilityStatementParts.searchParam(parameter.name, type: type)
    }
}
