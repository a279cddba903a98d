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
        } + [provenance, subscription]
        let rest = JSONValue.object([
            ("extension", .array([.object([("url", .string(websocketExtension)), ("valueUri", .string(websocketURL(base: base)))])])),
            ("mode", .string("server")),
            ("security", CapabilityStatementParts.smartSecurity(issuer: issuer)),
            ("resource", .array(resources)),
        ])
        return .object(
            CapabilityStatementParts.header(software: "medledger-records", description: "MedLedger records", base: base) + [("rest", .array([rest]))])
    }

    /// `$verify` is MedLedger's own operation; its canonical URL names it (no OperationDefinition is served).
    static let verifyOperation = "https://medledger.dev/fhir/OperationDefinition/verify"

    /// R4's way of naming the websocket a `websocket` subscription channel connects to.
    static let websocketExtension = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket"

    static func websocketURL(base: String) -> String {
        let socket = base.hasPrefix("https://") ? "wss://" + base.dropFirst(8) : "ws://" + base.dropFirst(base.hasPrefix("http://") ? 7 : 0)
        return socket + "/websocket"
    }

    /// Subscription: the caller's own, versioned for `If-Match` (no history is kept).
    private static let subscription: JSONValue = {
        let resource = CapabilityStatementParts.resource(
            "Subscription",
            documentation: "Notifications of DiagnosticReport versions matching criteria (rest-hook, signed; websocket), for what the subscriber may read",
            interactions: ["create", "read", "update", "delete", "search-type"], versioned: false,
            searchParams: [("status", "token"), ("type", "token")])
        let operation = JSONValue.object([("name", .string("status")), ("definition", .string(statusOperation))])
        return ResourceStamp.setting("operation", to: .array([operation]), in: ResourceStamp.setting("versioning", to: .string("versioned-update"), in: resource))
    }()

    /// The subscriptions backport's `$status` operation.
    static let statusOperation = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"

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
