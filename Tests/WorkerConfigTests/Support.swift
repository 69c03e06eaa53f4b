import Foundation
import Testing

@testable import WorkerConfig

/// Parses `yaml` as `jobs.yml`, expecting success.
func parse(_ yaml: String, environment: [String: String] = [:]) throws -> WorkerConfiguration {
    try ConfigLoader.parse(yaml: yaml, source: "jobs.yml", environment: environment)
}

/// Parses `yaml`, expecting a ``ConfigError``, and returns it.
func parseError(
    _ yaml: String, environment: [String: String] = [:],
    sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigError? {
    do {
        let configuration = try ConfigLoader.parse(yaml: yaml, source: "jobs.yml", environment: environment)
        Issue.record("expected an error, got \(configuration)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// A scratch directory removed when the value is released.
final class ScratchDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "worker-config-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
