import Foundation

/// Why `ctl` could not talk to the daemon; each says what to check.
struct CtlConnectionError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A blocking client of the control socket: one request line out, one answer line back.
/// (`ctl` runs one request and exits, so a plain blocking socket with timeouts is all it needs.)
struct CtlClient {
    let path: String
    let timeout: Double

    /// Sends `request` (one JSON object) and returns the answer line without its newline.
    func send(_ request: String) throws(CtlConnectionError) -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw CtlConnectionError("cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))

        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw CtlConnectionError("the socket path \(path) is too long for a Unix socket")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected != 0 {
            let code = errno
            switch code {
            case ENOENT:
                throw CtlConnectionError(
                    "no control socket at \(path): is the daemon running (systemctl status medianest-worker)? --socket or --config chooses another one"
                )
            case EACCES, EPERM:
                throw CtlConnectionError("permission denied on \(path): run ctl as the daemon's user or as a member of the socket's group")
            case ECONNREFUSED:
                throw CtlConnectionError("nothing listens on \(path): the daemon is not running (a stale socket file was left behind)")
            default:
                throw CtlConnectionError("cannot connect to \(path): \(String(cString: strerror(code)))")
            }
        }
        let line = Array((request + "\n").utf8)
        var offset = 0
        var sendError: String?
        while offset < line.count {
            let n = line.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, line.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                // The daemon may have answered before it closed (a refused peer): read that answer.
                sendError = String(cString: strerror(errno))
                break
            }
            offset += n
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw CtlConnectionError("the daemon did not answer within \(Int(timeout)) s; --timeout waits longer")
            }
            if n <= 0 {
                if answer.isEmpty {
                    throw CtlConnectionError("the daemon closed the connection without an answer" + (sendError.map { " (\($0))" } ?? ""))
                }
                break
            }
            if let end = buffer[0..<n].firstIndex(of: 10) {
                answer += buffer[0..<end]
                break
            }
            answer += buffer[0..<n]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}
