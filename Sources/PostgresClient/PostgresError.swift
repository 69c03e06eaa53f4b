/// What can go wrong talking to PostgreSQL.
///
/// Every message is a sentence a person can act on. None of them ever contains a
/// password: messages that come from libpq are scrubbed of the configured password
/// before they are stored here.
public enum PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The connection URL could not be understood; the text says what is wrong with it.
    case invalidURL(String)
    /// Could not connect, or the connection was lost; the text names `host:port` and
    /// gives libpq's reason. The connection is unusable afterwards (`isHealthy` is false).
    case connection(String)
    /// The server refused or failed a statement.
    /// - Parameters:
    ///   - message: the server's primary message (`PG_DIAG_MESSAGE_PRIMARY`).
    ///   - sqlState: the five-character SQLSTATE (`PG_DIAG_SQLSTATE`), e.g. `23505`;
    ///     `nil` when the error did not come from the server (e.g. a bad parameter
    ///     detected before sending, or a migration list that is not valid).
    ///   - detail: the server's detail line (`PG_DIAG_MESSAGE_DETAIL`), if any.
    case query(message: String, sqlState: String?, detail: String?)
    /// A column could not be read as the asked type (NULL, missing, or malformed).
    case decoding(String)
    /// The connection or pool was closed by its owner.
    case closed

    /// A one-line, human-readable account of the error.
    public var description: String {
        switch self {
        case .invalidURL(let reason):
            return "invalid PostgreSQL URL: \(reason)"
        case .connection(let reason):
            return "PostgreSQL connection error: \(reason)"
        case .query(let message, let sqlState, let detail):
            var text = "PostgreSQL error: \(message)"
            if let sqlState { text += " (SQLSTATE \(sqlState))" }
            if let detail, !detail.isEmpty { text += ": \(detail)" }
            return text
        case .decoding(let reason):
            return "PostgreSQL decoding error: \(reason)"
        case .closed:
            return "the PostgreSQL connection is closed"
        }
    }

    /// The SQLSTATE of a `.query` error, `nil` for every other case.
    public var sqlState: String? {
        if case .query(_, let state, _) = self { return state }
        return nil
    }

    /// True for `.connection`: the statement may not have run and a new connection
    /// may succeed, so the caller can retry at its level.
    public var isConnectionError: Bool {
        if case .connection = self { return true }
        return false
    }
}
