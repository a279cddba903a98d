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
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) where !fields.contains(where: { $0.key == key }) {
            fields.append((key, .string(value.description)))
        }
        var line = JSONValue.object(fields).serialized()
        line.append(0x0A)
        FileHandle.standardError.write(Data(line))
    }
}

public enum LogSetup {
    /// Bootstraps swift-log once per process (in `main` only).
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .json: return JSONLogHandler(label: label, level: level)
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
