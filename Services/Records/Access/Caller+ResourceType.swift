import MedLedgerCore

/// The shared caller and scopes, asked about records' own resource types.
extension Caller {
    func fhirUserID(_ type: ResourceType) -> String? { fhirUserID(type.rawValue) }

    /// 403 unless some scope grants `interaction` on `type`.
    func require(_ interaction: Interaction, on type: ResourceType) throws(Problem) {
        try require(interaction, onResource: type.rawValue)
    }
}

extension SMARTScope {
    func grants(_ interaction: Interaction, on type: ResourceType) -> Bool {
        grants(interaction, onResource: type.rawValue)
    }
}
