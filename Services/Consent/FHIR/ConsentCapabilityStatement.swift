import MedLedgerCore

/// `GET /fhir/metadata`: exactly what consent implements (FHIR R4 CapabilityStatement).
enum ConsentCapabilityStatement {
    static func resource(base: String, issuer: String) -> JSONValue {
        let interactions = ["create", "read", "vread", "update", "delete", "history-instance", "search-type"]
        let consent: JSONValue = .object([
            ("type", .string("Consent")),
            ("documentation", .string(documentation)),
            ("interaction", .array(interactions.map { .object([("code", .string($0))]) })),
            ("versioning", .string("versioned")),
            ("readHistory", .bool(true)),
            ("updateCreate", .bool(false)),
            ("conditionalCreate", .bool(false)),
            ("conditionalRead", .string("not-supported")),
            ("conditionalUpdate", .bool(false)),
            ("conditionalDelete", .string("not-supported")),
            ("searchParam", .array(ConsentSearchRequest.parameters.map { CapabilityStatementParts.searchParam($0.name, type: $0.type) })),
        ])
        let rest = JSONValue.object([
            ("mode", .string("server")),
            ("documentation", .string(searchDocumentation)),
            ("security", CapabilityStatementParts.smartSecurity(issuer: issuer)),
            ("resource", .array([consent])),
        ])
        return .object(
            CapabilityStatementParts.header(software: "medledger-consent", description: "MedLedger consent", base: base) + [("rest", .array([rest]))])
    }

    static let documentation = """
        Patient-privacy consents by which a patient permits one Practitioner or Organization (an EHR system) to access all their \
        reports, one category (provision.code, v2-0074) or one report (provision.data). Only active consents grant access.
        """

    static let searchDocumentation = """
        Search results: _count (default 20, at most 100; 0 answers the total only), _sort (_lastUpdated or -_lastUpdated, the \
        default), _total (accurate or none), paging by the next and previous links.
        """
}
