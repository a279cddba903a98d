import Foundation
public import Logging

public enum LogFormat: String, CaseIterable, Sendable {
    case text
    case json
}

/// One JSON object per line on stderr, for log shippers (LOG_FORMAT=json).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(key: String, value: JSONValue)] = [
            ("time", .string(Date().formatted(.iso8601))),
            ("level", .string(event.level.rawValue)),
            ("logger", .string(label)),
            ("message", .string(event.message.description)),
        ]
        for (key, value) in sortedMetadata(metadata, event) where !fields.contains(where: { $0.key == key }) {
            fields.append((key, .string(value.description)))
        }
        var line = JSONValue.object(fields).serialized()
        line.append(0x0A)
        FileHandle.standardError.write(Data(line))
    }
}

/// Readable lines on stderr (LOG_FORMAT=text), laid out like swift-log's StreamLogHandler. That
/// handler renders all metadata again each time a key is set, and every request sets several
/// (request id, caller): this one renders them only when a line is written.
public struct TextLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "\(Date().formatted(.iso8601)) \(event.level) \(label) :"
        for (key, value) in sortedMetadata(metadata, event) { line += " \(key)=\(value)" }
        line += " [\(event.source)] \(event.message)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// The handler's metadata overlaid with the line's own, in key order.
func sortedMetadata(_ metadata: Logger.Metadata, _ event: LogEvent) -> [(key: String, value: Logger.Metadata.Value)] {
    metadata.merging(event.metadata ?? [:]) { $1 }.sorted { $0.key < $1.key }
}

public enum LogSetup {
    /// Bootstraps swift-log once per process (in `main` only).
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .json: return JSONLogHandler(label: label, level: level)
            case .text: return TextLogHandler(label: label, level: level)
            }
        }
    }
}
