/// Everything that can go wrong talking to Redis. Each case carries a sentence a user can act
/// on; none ever contains a password.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL could not be parsed: what is wrong with it (the password redacted).
    case invalidURL(String)
    /// Could not connect, or the connection was lost: a sentence naming the server's address and the cause.
    case connection(String)
    /// An error reply from the server, as sent (for example `NOGROUP No such key ...` or `BUSYGROUP ...`).
    case server(String)
    /// The reply could not be understood, or a command could not be encoded.
    case protocolError(String)
    /// The connection was closed by ``RedisConnection/close()``; the command may or may not have run.
    case closed

    /// A sentence that says what happened and what to do.
    public var description: String {
        switch self {
        case .invalidURL(let message): return message
        case .connection(let message): return message
        case .server(let message): return "Redis replied with an error: \(message)"
        case .protocolError(let message): return "Redis protocol error: \(message)"
        case .closed: return "The Redis connection was closed by the application; open a new connection to send more commands."
        }
    }

    /// The first word of a ``server(_:)`` error (`NOGROUP`, `BUSYGROUP`, `WRONGTYPE`, `ERR`...); otherwise `nil`.
    public var serverErrorCode: String? {
        guard case .server(let message) = self else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    /// `true` for ``connection(_:)`` and ``closed``: the command may not have reached the server,
    /// or its reply was lost. Retrying is safe only for idempotent commands.
    public var isConnectionFailure: Bool {
        switch self {
        case .connection, .closed: return true
        default: return false
        }
    }
}
