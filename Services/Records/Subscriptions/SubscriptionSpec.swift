import Foundation
import MedLedgerCore

/// A Subscription as its owner sent it, checked: what records stores and delivers by. Every
/// rule broken is a 422 naming the element (FHIR: the resource is valid JSON but not acceptable).
struct SubscriptionSpec: Sendable {
    enum Channel: String, Sendable {
        case restHook = "rest-hook"
        case websocket
    }

    /// What a notification carries (the subscriptions backport's payload content codes).
    enum Content: String, Sendable {
        case empty
        case idOnly = "id-only"
        case fullResource = "full-resource"
    }

    var resource: JSONValue
    var criteria: SearchRequest
    var criteriaText: String
    var channel: Channel
    var endpoint: URL?
    var headers: [(name: String, value: String)]
    var content: Content
    var end: Date?
    /// `active` or `off`, as the owner asked.
    var status: String

    static let payloadContentURL = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content"
    /// Search parameters a criteria may use: the filters of records' DiagnosticReport search.
    static let criteriaParameters: Set<String> = [
        "patient", "subject", "code", "category", "status", "identifier", "performer", "based-on", "_id", "date", "issued",
    ]
    /// Headers records sets itself on every notification.
    static let reservedHeaders: Set<String> = ["host", "content-type", "content-length", "transfer-encoding", "connection"]

    /// `current`: the stored status when this is an update (`error` may be sent back unchanged).
    init(_ resource: JSONValue, development: Bool, current: String? = nil) throws(Problem) {
        try SubscriptionRules.validate(resource)
        self.resource = resource
        status = try Self.status(resource["status"], current: current)
        guard let reason = resource["reason"]?.stringValue, !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw Self.invalid("reason is required (why the subscription exists)", "reason")
        }
        guard let criteriaText = resource["criteria"]?.stringValue else { throw Self.invalid("criteria is required, e.g. DiagnosticReport?status=final", "criteria") }
        self.criteriaText = criteriaText
        criteria = try Self.criteria(criteriaText)
        if let end = resource["end"] {
            guard let text = end.stringValue, let range = FHIRDate.range(of: text, kind: .instant) else {
                throw Self.invalid("end must be an instant, e.g. 2027-01-01T00:00:00Z", "end")
            }
            self.end = range.low
        }
        guard let channel = resource["channel"], channel.isObject else { throw Self.invalid("channel is required", "channel") }
        guard let type = channel["type"]?.stringValue.flatMap(Channel.init(rawValue:)) else {
            throw Self.invalid("channel.type must be rest-hook or websocket (records delivers no other channel)", "channel.type")
        }
        self.channel = type
        content = try Self.content(channel)
        headers = try Self.headers(channel["header"])
        switch type {
        case .restHook:
            guard let text = channel["endpoint"]?.stringValue else { throw Self.invalid("a rest-hook channel needs an endpoint URL", "channel.endpoint") }
            endpoint = try Self.endpoint(text, development: development)
        case .websocket:
            guard channel["endpoint"] == nil, headers.isEmpty else {
                throw Self.invalid("a websocket channel has no endpoint or headers: the client connects to records' websocket URL", "channel.endpoint")
            }
        }
    }

    static func invalid(_ message: String, _ element: String) -> Problem {
        Problem.invalidResource([FHIRIssue(code: "invalid", diagnostics: message, expression: "Subscription.\(element)")])
    }

    private static func status(_ value: JSONValue?, current: String?) throws(Problem) -> String {
        switch value?.stringValue {
        case "requested", "active": return "active"
        // Created paused is no subscription at all: R4's client asks for `requested`.
        case "off" where current != nil: return "off"
        case "error" where current == "error": return "error"
        default: throw invalid("status must be requested or active (off to pause an existing one; error is set by the server)", "status")
        }
    }

    /// `DiagnosticReport?…` with filters records' search supports; no result controls (a
    /// subscription matches each report on its own).
    static func criteria(_ text: String) throws(Problem) -> SearchRequest {
        let parts = text.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts[0] == ResourceType.diagnosticReport.rawValue else {
            throw invalid("criteria must be a DiagnosticReport search (DiagnosticReport?…); records notifies of no other resource", "criteria")
        }
        let fields: [(name: String, value: String)]
        do {
            fields = parts.count > 1 ? try FormBody(parsing: parts[1]).fields : []
        } catch {
            throw invalid("criteria is not a valid query: \(error.description)", "criteria")
        }
        for field in fields {
            let name = SearchControls.split(field.name).0
            guard criteriaParameters.contains(name) else {
                throw invalid(
                    "criteria may not use \(field.name): use \(criteriaParameters.sorted().joined(separator: ", "))", "criteria")
            }
        }
        do {
            return try SearchRequest(type: .diagnosticReport, fields: fields, strict: true)
        } catch {
            throw invalid("criteria: \(error.detail ?? error.title)", "criteria")
        }
    }

    private static func content(_ channel: JSONValue) throws(Problem) -> Content {
        var content: Content? = nil
        for extensionValue in channel["_payload"]?["extension"]?.arrayValue ?? [] where extensionValue["url"]?.stringValue == payloadContentURL {
            guard let code = extensionValue["valueCode"]?.stringValue.flatMap(Content.init(rawValue:)) else {
                throw invalid("the payload content must be empty, id-only or full-resource", "channel.payload")
            }
            content = code
        }
        guard let payload = channel["payload"] else { return content ?? .empty }
        let type = payload.stringValue?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard let type, ["application/fhir+json", "application/json"].contains(type) else {
            throw invalid("channel.payload must be application/fhir+json (records sends JSON only)", "channel.payload")
        }
        return content ?? .fullResource
    }

    private static func headers(_ value: JSONValue?) throws(Problem) -> [(name: String, value: String)] {
        guard let value else { return [] }
        guard let lines = value.arrayValue, lines.count <= 10 else { throw invalid("channel.header is a list of at most 10 `Name: value` strings", "channel.header") }
        return try lines.map { line throws(Problem) in
            guard let text = line.stringValue, text.utf8.count <= 4096, let colon = text.firstIndex(of: ":") else {
                throw invalid("each channel.header must be `Name: value`", "channel.header")
            }
            let name = String(text[..<colon])
            let value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            let token = CharacterSet(charactersIn: "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            guard !name.isEmpty, name.unicodeScalars.allSatisfy(token.contains), !value.contains(where: { $0.isNewline || $0 == "\0" }) else {
                throw invalid("channel.header \(name) is not a valid HTTP header", "channel.header")
            }
            let lower = name.lowercased()
            guard !reservedHeaders.contains(lower), !lower.hasPrefix("x-medledger-") else {
                throw invalid("channel.header may not set \(name): records sets it", "channel.header")
            }
            return (name, value)
        }
    }

    /// https anywhere; plain http only to this machine in development mode (a test receiver).
    private static func endpoint(_ text: String, development: Bool) throws(Problem) -> URL {
        guard text.utf8.count <= 2048, let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw invalid("channel.endpoint must be an absolute https URL", "channel.endpoint")
        }
        guard url.user == nil, url.password == nil else {
            throw invalid("channel.endpoint may not carry credentials; send them in channel.header", "channel.endpoint")
        }
        switch scheme {
        case "https": return url
        case "http" where development && isLoopback(host): return url
        case "http":
            throw invalid("channel.endpoint must use https (plain http only to a loopback address in development mode)", "channel.endpoint")
        default:
            throw invalid("channel.endpoint must be an https URL", "channel.endpoint")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        if bare == "localhost" || bare == "::1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
