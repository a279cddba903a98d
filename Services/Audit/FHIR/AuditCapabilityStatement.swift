import MedLedgerCore

/// `GET /fhir/metadata`: exactly what audit implements (FHIR R4 CapabilityStatement). Events
/// arrive through `POST /events`, not FHIR create, so AuditEvent is read and search only.
enum AuditCapabilityStatement {
    static func resource(base: String, issuer: String) -> JSONValue {
        let auditEvent = CapabilityStatementParts.resource(
            AuditAccess.resourceType, documentation: documentation, interactions: ["read", "search-type"], versioned: false,
            searchParams: AuditSearchRequest.parameters)
        return CapabilityStatementParts.statement(
            software: "medledger-audit", description: "MedLedger audit", base: base, issuer: issuer, documentation: searchDocumentation,
            resources: [auditEvent])
    }

    static let documentation = """
        Every read, search, write, login, logout, failed login, consent change and break-glass of MedLedger, in one SHA3-256 \
        hash chain anchored in the ledger; the id is the event's place in the chain. Admins see every event; a patient sees \
        the events about themselves (purposeOfEvent BTG marks break-glass access). agent and entity take :identifier \
        (system|value, e.g. urn:medledger:identity:user|{account id} for an account's logins) and a resource type modifier.
        """

    static let searchDocumentation = """
        Search results: _count (default 20, at most 1000; 0 answers the total only), _sort (date or -date, the default), \
        _total (accurate or none), paging by the next and previous links.
        """
}
