import Foundation
import MedLedgerCore

/// The body of a rest-hook notification: a `history` Bundle whose first entry is the
/// subscription's status (the subscriptions backport's R4 shape: a Parameters resource) and,
/// unless the payload is empty, the report version it is about, with the resource itself for
/// `full-resource`.
enum NotificationBundle {
    static let statusProfile = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"

    struct Event: Sendable {
        var number: Int64
        var reportID: String
        var version: Int
        var writtenAt: Date
    }

    static func body(
        subscription: StoredSubscription, event: Event, content: SubscriptionSpec.Content, resource: [UInt8]?, base: String, now: Date
    ) -> [UInt8] {
        let focus = "\(base)/DiagnosticReport/\(event.reportID)/_history/\(event.version)"
        var eventParts: [JSONValue] = [
            part("event-number", ("valueString", .string(String(event.number)))),
            part("timestamp", ("valueInstant", .string(FHIRDate.instantText(event.writtenAt)))),
        ]
        if content != .empty { eventParts.append(part("focus", ("valueReference", .object([("reference", .string(focus))])))) }
        let status = statusParameters(
            subscription: subscription, base: base, type: "event-notification",
            extra: [.object([("name", .string("notification-event")), ("part", .array(eventParts))])])
        var entries: [JSONValue] = [
            .object([
                ("fullUrl", .string("urn:uuid:\(UUID().uuidString.lowercased())")), ("resource", status),
                ("request", .object([("method", .string("GET")), ("url", .string("\(base)/Subscription/\(subscription.id)/$status"))])),
                ("response", .object([("status", .string("200"))])),
            ])
        ]
        if content != .empty {
            let created = event.version == 1
            var entry: [(key: String, value: JSONValue)] = [("fullUrl", .string(focus))]
            if content == .fullResource, let resource, let parsed = try? JSONParser.parse(resource) { entry.append(("resource", parsed)) }
            entry.append(
                ("request", .object([("method", .string(created ? "POST" : "PUT")), ("url", .string(created ? "DiagnosticReport" : "DiagnosticReport/\(event.reportID)"))])))
            entry.append(("response", .object([("status", .string(created ? "201" : "200"))])))
            entries.append(.object(entry))
        }
        return JSONValue.object([
            ("resourceType", .string("Bundle")), ("id", .string(UUID().uuidString.lowercased())), ("type", .string("history")),
            ("timestamp", .string(FHIRDate.instantText(now))), ("entry", .array(entries)),
        ]).serialized()
    }

    /// The subscription's status as the backport's Parameters (also what `$status` answers).
    static func statusParameters(subscription: StoredSubscription, base: String, type: String, extra: [JSONValue]) -> JSONValue {
        var parameters: [JSONValue] = [
            part("subscription", ("valueReference", .object([("reference", .string("\(base)/Subscription/\(subscription.id)"))]))),
            part("status", ("valueCode", .string(subscription.status))),
            part("type", ("valueCode", .string(type))),
            part("events-since-subscription-start", ("valueString", .string(String(subscription.eventsSinceStart)))),
        ]
        if let error = subscription.error { parameters.append(part("error", ("valueString", .string(error)))) }
        return .object([
            ("resourceType", .string("Parameters")), ("meta", .object([("profile", .array([.string(statusProfile)]))])),
            ("parameter", .array(parameters + extra)),
        ])
    }

    static func part(_ name: String, _ value: (String, JSONValue)) -> JSONValue {
        .object([("name", .string(name)), (value.0, value.1)])
    }
}
