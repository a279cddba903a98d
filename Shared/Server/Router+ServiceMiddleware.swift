public import Hummingbird
import Logging

extension Router where Context == ServiceRequestContext {
    /// The middleware every service runs, in this order: a request id first so that every later
    /// log line carries it, errors rendered last so that metrics and logs see the final status.
    /// `fhirBase`: the path under which errors are FHIR OperationOutcomes.
    public func addServiceMiddleware(fhirBase: String? = nil) {
        add(middleware: RequestIDMiddleware())
        add(middleware: LogRequestsMiddleware(.debug))
        add(middleware: MetricsMiddleware())
        add(middleware: ErrorMiddleware(fhirBase: fhirBase))
    }
}
