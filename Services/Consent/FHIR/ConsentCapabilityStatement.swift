import MedLedgerCore

/// `GET /fhir/metadata`: exactly what consent implements (FHIR R4 CapabilityStatement).
enum ConsentCapabilityStatement {
    static func resource(base: String, issuer: String) -> JSONValue {
        let consent = CapabilityStatementParts.resource(
            ConsentAccess.resourceType, documentation: documentation,
            interactions: ["create", "read", "vread", "update", "delete", "history-instance", "search-type"], versioned: true,
            searchParams: ConsentSearchRequest.parameters)
        return CapabilityStatementParts.statement(
            software: "medledger-consent", description: "MedLedger consent", base: base, issuer: issuer, documentation: searchDocumentation,
            resources: [consent])
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
