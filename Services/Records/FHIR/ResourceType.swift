/// The resource types records serves (design guide, "Records").
enum ResourceType: String, CaseIterable, Sendable {
    case patient = "Patient"
    case practitioner = "Practitioner"
    case diagnosticReport = "DiagnosticReport"
    case binary = "Binary"

    /// From a URL path segment; nil for types records does not serve.
    init?(path: some StringProtocol) {
        self.init(rawValue: String(path))
    }
}
