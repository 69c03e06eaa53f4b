/// Why a configuration was refused: the file, the key and what is wrong.
///
/// Its ``description`` is the line `medianest-worker` prints before exiting with EX_CONFIG, e.g.
/// `jobs.yml:14: queues.youtube.concurrency: expected a whole number ≥ 1, got "three"`.
/// Messages never contain secrets: URLs are shown with their passwords masked.
package struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The configuration file's path, or the `source` given to ``ConfigLoader/parse(yaml:source:environment:)``
    /// (`"<string>"` by convention).
    package var file: String
    /// Dotted path of the offending key, e.g. `queues.youtube.concurrency`; `""` for the whole file.
    package var key: String
    /// What is wrong and what is expected.
    package var message: String
    /// 1-based line in the file when known.
    package var line: Int?

    /// An error about `key` in `file`.
    package init(file: String, key: String, message: String, line: Int? = nil) {
        self.file = file
        self.key = key
        self.message = message
        self.line = line
    }

    /// `file[:line]: key: message` (the key part is left out for errors about the whole file).
    package var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if !key.isEmpty { text += key + ": " }
        return text + message
    }
}
