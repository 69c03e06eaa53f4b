import CAVShims
import CLibAV

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Every failure of the Media module. Each case has a sentence a user can act on
/// (`description`) and, where libav failed, libav's own message (`detail`).
public enum MediaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input file does not exist.
    case fileNotFound(path: String)
    /// The input exists but could not be opened (permissions, I/O).
    case openFailed(path: String, message: String)
    /// The input is not a media file libav understands, or it is damaged or truncated.
    case invalidMedia(path: String, message: String)
    /// The input has no stream of the kind the operation needs.
    case noStream(path: String, kind: StreamKind)
    /// A stream's codec cannot go into the container and the module does not re-encode it.
    case unsupportedCodec(codec: String, container: String, message: String)
    /// Decoding a stream failed.
    case decodeFailed(codec: String, message: String)
    /// Encoding a stream failed (or the encoder is missing from this libav build).
    case encodeFailed(codec: String, message: String)
    /// Writing the output failed (disk full, permissions, muxer refusal).
    case writeFailed(path: String, message: String)
    /// An argument is out of range or inconsistent.
    case invalidArgument(String)
    /// The operation was cancelled; no output was left behind.
    case cancelled
    /// Any other libav failure.
    case libav(operation: String, message: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "The file \(path) does not exist."
        case .openFailed(let path, let message):
            return "Could not open \(path): \(message)."
        case .invalidMedia(let path, let message):
            return "\(path) is not a readable media file (damaged, truncated or not media): \(message)."
        case .noStream(let path, let kind):
            return "\(path) has no \(kind.rawValue) stream."
        case .unsupportedCodec(let codec, let container, let message):
            return "\(codec) cannot be stored in \(container): \(message)."
        case .decodeFailed(let codec, let message):
            return "Could not decode the \(codec) stream: \(message)."
        case .encodeFailed(let codec, let message):
            return "Could not encode to \(codec): \(message)."
        case .writeFailed(let path, let message):
            return "Could not write \(path): \(message)."
        case .invalidArgument(let message):
            return "Invalid media request: \(message)."
        case .cancelled:
            return "The media operation was cancelled."
        case .libav(let operation, let message):
            return "Media operation failed (\(operation)): \(message)."
        }
    }

    /// libav's message (or the module's reason) without the framing sentence.
    public var detail: String {
        switch self {
        case .fileNotFound: return "No such file or directory"
        case .openFailed(_, let m), .invalidMedia(_, let m), .unsupportedCodec(_, _, let m),
            .decodeFailed(_, let m), .encodeFailed(_, let m), .writeFailed(_, let m),
            .libav(_, let m):
            return m
        case .noStream(_, let kind): return "no \(kind.rawValue) stream"
        case .invalidArgument(let m): return m
        case .cancelled: return "cancelled"
        }
    }
}

/// libav error codes and messages.
enum AVErr {
    static let again = cav_error_eagain()
    static let eof = cav_error_eof()
    static let invalidData = cav_error_invaliddata()
    static let exit = cav_error_exit()
    static let noMemory = cav_error_from_errno(ENOMEM)
    static let notFound = cav_error_from_errno(ENOENT)

    /// av_strerror() text of a code.
    static func string(_ code: Int32) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buf in
            cav_error_string(code, buf.baseAddress, 256)
            return String(cString: buf.baseAddress!)
        }
    }

    /// The last error libav logged on this thread, if any.
    static func lastLog() -> String? {
        let s = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 512) { buf in
            cav_log_last(buf.baseAddress, 512)
            return String(cString: buf.baseAddress!)
        }
        return s.isEmpty ? nil : s
    }

    /// av_strerror() text, followed by what libav logged about it on this thread.
    static func message(_ code: Int32) -> String {
        let base = string(code)
        if let log = lastLog(), log != base { return "\(base) (\(log))" }
        return base
    }

    /// The errno value behind a libav code, if it came from one.
    static func errno(of code: Int32) -> Int32 { cav_errno_of(code) }
}

extension MediaError {
    /// The error for a failed avformat_open_input.
    static func open(_ path: String, _ code: Int32) -> MediaError {
        if code == AVErr.exit { return .cancelled }
        switch AVErr.errno(of: code) {
        case ENOENT, ENOTDIR: return .fileNotFound(path: path)
        case 0: return .invalidMedia(path: path, message: AVErr.message(code))
        default:
            if code == AVErr.invalidData { return .invalidMedia(path: path, message: AVErr.message(code)) }
            return .openFailed(path: path, message: AVErr.message(code))
        }
    }

    /// The error for a failed read of an open input.
    static func read(_ path: String, _ code: Int32) -> MediaError {
        if code == AVErr.exit { return .cancelled }
        if AVErr.errno(of: code) != 0 && code != AVErr.invalidData {
            return .openFailed(path: path, message: AVErr.message(code))
        }
        return .invalidMedia(path: path, message: AVErr.message(code))
    }

    /// The error for a failed write to the output.
    static func write(_ path: String, _ code: Int32) -> MediaError {
        if code == AVErr.exit { return .cancelled }
        return .writeFailed(path: path, message: AVErr.message(code))
    }
}
