import Foundation
import JSON
import Logging
import Synchronization
import WorkerCore

/// Writes one JSON object per line: `ts`, `level`, `msg`, `logger`, then the metadata
/// (job lines carry `jobId`, `queue` and `type`). Used when stdout is not a terminal.
package struct JSONLogHandler: LineLogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level
    let label: String

    package init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    package func log(event: LogEvent) {
        let level = event.level
        let message = event.message
        var pairs: [(String, JSONText.Value?)] = [
            ("ts", .string(Timestamp.now())), ("level", .string(level.rawValue)), ("msg", .string(message.description)),
            ("logger", .string(label)),
        ]
        for (key, value) in merged(event) where !["ts", "level", "msg", "logger"].contains(key) {
            pairs.append((key, .string(value.description)))
        }
        OutputLock.write(JSONText.object(pairs) + "\n")
    }
}

/// Human-readable lines for a terminal: `time level message key=value…`.
package struct TextLogHandler: LineLogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level
    let label: String

    package init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    package func log(event: LogEvent) {
        let level = event.level
        let message = event.message
        let extra = merged(event).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        OutputLock.write("\(Timestamp.now()) \(level.rawValue.uppercased()) \(message)\(extra.isEmpty ? "" : " " + extra)\n")
    }
}

/// What both line handlers share: metadata storage and merging.
package protocol LineLogHandler: LogHandler {}

extension LineLogHandler {
    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The handler's metadata with the event's own laid over it, sorted by key.
    func merged(_ event: LogEvent) -> [(key: String, value: Logger.MetadataValue)] {
        var all = metadata
        if let explicit = event.metadata { all.merge(explicit) { _, new in new } }
        return all.sorted { $0.key < $1.key }
    }
}

/// Serializes writes to stdout so lines from many threads never interleave.
enum OutputLock {
    static let lock = Mutex(())

    static func write(_ text: String) {
        lock.withLock { _ in
            var bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeMutableBytes { buf in
                    Foundation.write(STDOUT_FILENO, buf.baseAddress! + offset, buf.count - offset)
                }
                if n <= 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
    }
}

/// Sets up swift-log for the process: JSON lines when stdout is not a terminal (or `format: json`).
package enum Logs {
    package static func bootstrap(level: String, format: String) {
        let lvl = Logger.Level(rawValue: level) ?? .info
        let json = format == "json" || (format != "text" && isatty(STDOUT_FILENO) == 0)
        LoggingSystem.bootstrap { label in
            json ? JSONLogHandler(label: label, level: lvl) as any LogHandler : TextLogHandler(label: label, level: lvl)
        }
    }
}
