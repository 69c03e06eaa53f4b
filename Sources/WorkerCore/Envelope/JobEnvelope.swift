import JSON

/// A job as the API enqueues it (contract section 1), validated.
package struct JobEnvelope: Sendable, Equatable {
    package var id: String
    package var type: String
    /// The payload object, re-encoded compactly.
    package var payloadJSON: String
    package var userId: String?
    package var maxAttempts: Int?
    /// `runAt` as epoch milliseconds.
    package var runAt: Int64?
    package var timeoutSeconds: Int?
    /// The job's own wait between attempts, instead of its queue's (`backoff`; BullMQ jobs carry theirs).
    package var backoff: JobBackoff?
    /// The envelope exactly as it arrived (kept in the state hash so retries and hand-backs re-enqueue it unchanged).
    package var raw: String

    /// Largest accepted stream entry (contract: 64 KiB).
    package static let maxEntryBytes = 64 * 1024

    package init(
        id: String, type: String, payloadJSON: String = "{}", userId: String? = nil,
        maxAttempts: Int? = nil, runAt: Int64? = nil, timeoutSeconds: Int? = nil, backoff: JobBackoff? = nil, raw: String? = nil
    ) {
        self.backoff = backoff
        self.id = id
        self.type = type
        self.payloadJSON = payloadJSON
        self.userId = userId
        self.maxAttempts = maxAttempts
        self.runAt = runAt
        self.timeoutSeconds = timeoutSeconds
        self.raw =
            raw
            ?? JSONText.object([
                ("id", .string(id)), ("type", .string(type)), ("payload", .raw(payloadJSON)),
                ("userId", userId.map { .string($0) }), ("maxAttempts", maxAttempts.map { .int(Int64($0)) }),
                ("runAt", runAt.map { .string(Timestamp.format(milliseconds: $0)) }),
                ("timeoutSeconds", timeoutSeconds.map { .int(Int64($0)) }),
                ("backoff", backoff.map { .raw($0.json) }),
            ])
    }

    /// The payload object.
    package var payload: JSONValue {
        JSONValue.parse(payloadJSON) ?? .object([])
    }

    /// True when `id` is 1–128 characters of `[A-Za-z0-9._:-]`, and not `.` or `..` (ids name
    /// per-job folders, so those two would name the temp root or its parent).
    package static func isValidID(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard !utf8.isEmpty, utf8.count <= 128, id != ".", id != ".." else { return false }
        for b in utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: ":"), UInt8(ascii: "-"):
                continue
            default: return false
            }
        }
        return true
    }

    /// True when `name` matches `[a-z0-9_-]{1,64}` (queue names).
    package static func isValidQueueName(_ name: String) -> Bool {
        let utf8 = name.utf8
        guard !utf8.isEmpty, utf8.count <= 64 else { return false }
        return utf8.allSatisfy {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
        }
    }
}

/// A job's own backoff (envelope field `backoff`): `{"type": "fixed"|"exponential", "delay": ms}`, as
/// BullMQ's job option is: fixed waits `delay` after every failed attempt, exponential `delay · 2^(n−1)`
/// after attempt n. No jitter, no cap but 24 hours (so the job's owner sees the waits it asked for).
package struct JobBackoff: Sendable, Equatable {
    package enum Kind: String, Sendable { case fixed, exponential }
    package var kind: Kind
    package var delayMilliseconds: Int

    package init(kind: Kind, delayMilliseconds: Int) {
        self.kind = kind
        self.delayMilliseconds = delayMilliseconds
    }

    /// Longest wait between two attempts.
    package static let maximumMilliseconds = 86_400_000

    package var json: String {
        JSONText.object([("type", .string(kind.rawValue)), ("delay", .int(Int64(delayMilliseconds)))])
    }

    package struct Problem: Error, Sendable { package var message: String }

    /// Checks `{"type", "delay"}`; a number alone is a fixed delay (BullMQ's shorthand).
    package static func parse(_ value: JSONValue, field: String = "backoff") -> Result<JobBackoff, Problem> {
        let delayRange = 0...maximumMilliseconds
        if let ms = value.intValue {
            guard delayRange.contains(ms) else { return .failure(Problem(message: "'\(field)' must be 0 to \(maximumMilliseconds) milliseconds")) }
            return .success(JobBackoff(kind: .fixed, delayMilliseconds: ms))
        }
        guard value.isObject else {
            return .failure(Problem(message: "'\(field)' must be {\"type\": \"fixed\" or \"exponential\", \"delay\": milliseconds}, not \(value.kind)"))
        }
        let kind: Kind
        switch value["type"] {
        case .string(let s)?:
            guard let k = Kind(rawValue: s) else {
                return .failure(Problem(message: "'\(field).type' must be \"fixed\" or \"exponential\", not \(JSONText.quote(String(s.prefix(40))))"))
            }
            kind = k
        case nil: return .failure(Problem(message: "'\(field).type' is missing (\"fixed\" or \"exponential\")"))
        case let other?: return .failure(Problem(message: "'\(field).type' must be a string, not \(other.kind)"))
        }
        var delay = 0
        switch value["delay"] {
        case nil, .null?: delay = 0
        case let d? where d.intValue.map { delayRange.contains($0) } == true: delay = d.intValue!
        case let other?:
            return .failure(Problem(message: "'\(field).delay' must be a whole number of milliseconds from 0 to \(maximumMilliseconds), not \(other.doubleValue != nil ? other.encoded : other.kind)"))
        }
        return .success(JobBackoff(kind: kind, delayMilliseconds: delay))
    }

    /// Seconds to wait after failed attempt `attempt` (1-based).
    package func delay(afterAttempt attempt: Int) -> Double {
        let ms: Double
        switch kind {
        case .fixed: ms = Double(delayMilliseconds)
        case .exponential: ms = Double(delayMilliseconds) * Double(1 << min(max(attempt - 1, 0), 40))
        }
        return min(ms, Double(Self.maximumMilliseconds)) / 1000
    }
}

/// Why a stream entry was refused. `id` is set when the entry carried a usable job id.
package struct EnvelopeRejection: Error, Sendable, Equatable {
    package var id: String?
    package var type: String?
    package var userId: String?
    package var reason: String
    /// The offending entry, shortened, for the durable record.
    package var raw: String
}

/// Parses and validates stream entries into envelopes.
package enum EnvelopeParser {
    /// Validates one stream entry's field/value pairs, the payload included: `schema` gives the
    /// payload schema of a type, nil for a type no handler serves. A payload that does not fit is
    /// refused with the schema's sentence (`payload.seconds must be a number from 0 to 86400`),
    /// with the envelope's id, type and userId kept so that the job's own hash says why.
    package static func parse(fields: [(String, [UInt8])], schema: (String) -> PayloadSchema?) -> Result<JobEnvelope, EnvelopeRejection> {
        var size = 0
        var jobBytes: [UInt8]?
        for (name, value) in fields {
            size += name.utf8.count + value.count
            if name == "job" { jobBytes = value }
        }
        let rawPreview = preview(jobBytes ?? fields.first?.1 ?? [])
        func reject(
            _ reason: String, id: String? = nil, type: String? = nil, userId: String? = nil
        ) -> Result<JobEnvelope, EnvelopeRejection> {
            .failure(EnvelopeRejection(id: id, type: type, userId: userId, reason: reason, raw: rawPreview))
        }
        if size > JobEnvelope.maxEntryBytes {
            // Still recover the id so the API sees the failure on the job's own hash.
            let id = jobBytes.flatMap { JSONValue.parse(bytes: $0)?["id"]?.stringValue }.flatMap { JobEnvelope.isValidID($0) ? $0 : nil }
            return reject("the entry is \(size / 1024) KiB; the limit is 64 KiB", id: id)
        }
        guard let jobBytes else {
            let names = fields.map(\.0).joined(separator: ", ")
            return reject("the stream entry has no 'job' field (fields: \(names.isEmpty ? "none" : names))")
        }
        guard let text = String(validating: jobBytes, as: UTF8.self) else {
            return reject("the 'job' field is not valid UTF-8")
        }
        guard let object = JSONValue.parse(bytes: jobBytes) else {
            return reject("the 'job' field is not valid JSON")
        }
        guard object.isObject else {
            return reject("the 'job' field must be a JSON object, not \(object.kind)")
        }
        let id: String
        switch object["id"] {
        case nil: return reject("the envelope has no 'id'")
        case .string(let s)? where JobEnvelope.isValidID(s): id = s
        case .string(let s)?:
            return reject("the 'id' \(JSONText.quote(String(s.prefix(140)))) is not 1–128 characters of A-Z a-z 0-9 . _ : -")
        case let other?: return reject("the 'id' must be a string, not \(other.kind)")
        }
        let userId: String?
        switch object["userId"] {
        case nil, .null?: userId = nil
        case .string(let s)? where !s.isEmpty && s.utf8.count <= 128 && !s.unicodeScalars.contains(where: { $0.value < 0x20 }):
            userId = s
        default: return reject("'userId' must be a non-empty string of at most 128 characters", id: id)
        }
        guard let typeValue = object["type"] else { return reject("the envelope has no 'type'", id: id, userId: userId) }
        guard case .string(let type) = typeValue, !type.isEmpty else {
            return reject("'type' must be a non-empty string, not \(typeValue.kind)", id: id, userId: userId)
        }
        guard let payloadSchema = schema(type) else {
            return reject("unknown job type '\(type.prefix(100))'", id: id, type: type, userId: userId)
        }
        guard let payload = object["payload"] else {
            return reject("the envelope has no 'payload' (use {} for none)", id: id, type: type, userId: userId)
        }
        guard payload.isObject else {
            return reject("'payload' must be a JSON object, not \(payload.kind)", id: id, type: type, userId: userId)
        }
        if let problem = payloadSchema.validate(payload) {
            return reject(problem, id: id, type: type, userId: userId)
        }
        var ints: [String: Int] = [:]
        for key in ["maxAttempts", "timeoutSeconds"] {
            switch object[key] {
            case nil, .null?: continue
            case let value? where value.intValue.map { $0 >= 1 && $0 <= Int(Int32.max) } == true: ints[key] = value.intValue
            default: return reject("'\(key)' must be a whole number ≥ 1", id: id, type: type, userId: userId)
            }
        }
        var runAt: Int64?
        switch object["runAt"] {
        case nil, .null?: break
        case .string(let s)?:
            switch Timestamp.check(s) {
            case .success(let ms): runAt = ms
            case .failure(let problem):
                return reject(
                    "'runAt' is not an RFC 3339 timestamp (\(problem)): \(JSONText.quote(String(s.prefix(60))))",
                    id: id, type: type, userId: userId)
            }
        case let other?:
            return reject("'runAt' must be an RFC 3339 timestamp string, not \(other.kind)", id: id, type: type, userId: userId)
        }
        var backoff: JobBackoff?
        switch object["backoff"] {
        case nil, .null?: break
        case let value?:
            switch JobBackoff.parse(value) {
            case .success(let b): backoff = b
            case .failure(let problem): return reject(problem.message, id: id, type: type, userId: userId)
            }
        }
        return .success(
            JobEnvelope(
                id: id, type: type, payloadJSON: payload.encoded, userId: userId,
                maxAttempts: ints["maxAttempts"], runAt: runAt, timeoutSeconds: ints["timeoutSeconds"], backoff: backoff, raw: text))
    }

    private static func preview(_ bytes: [UInt8]) -> String {
        let cut = bytes.prefix(1024)
        let text = String(decoding: cut, as: UTF8.self)
        return bytes.count > 1024 ? text + "… (\(bytes.count) bytes)" : text
    }
}
