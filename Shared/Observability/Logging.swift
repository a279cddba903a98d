import Foundation
public import Logging

public enum LogFormat: String, CaseIterable, Sendable {
    case text
    case json
}

/// One line per event on stderr: a JSON object for log shippers (LOG_FORMAT=json), or readable
/// text laid out like swift-log's StreamLogHandler (text). That handler renders all metadata
/// again each time a key is set, and every request sets several (request id, caller): this one
/// renders them only when a line is written.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let format: LogFormat

    public init(label: String, level: Logger.Level, format: LogFormat) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }.sorted { $0.key < $1.key }
        var line: [UInt8]
        switch format {
        case .json:
            var fields: [(key: String, value: JSONValue)] = [
                ("time", .string(Date().formatted(.iso8601))),
                ("level", .string(event.level.rawValue)),
                ("logger", .string(label)),
                ("message", .string(event.message.description)),
            ]
            for (key, value) in merged where !fields.contains(where: { $0.key == key }) {
                fields.append((key, .string(value.description)))
            }
            line = JSONValue.object(fields).serialized()
        case .text:
            var text = "\(Date().formatted(.iso8601)) \(event.level) \(label) :"
            for (key, value) in merged { text += " \(key)=\(value)" }
            line = Array("\(text) [\(event.source)] \(event.message)".utf8)
        }
        line.append(0x0A)
        FileHandle.standardError.write(Data(line))
    }
}

public enum LogSetup {
    /// Bootstraps swift-log once per process (in `main` only).
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, level: level, format: format) }
    }
}
