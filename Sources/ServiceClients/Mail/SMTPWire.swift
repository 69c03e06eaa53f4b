import CLibSSL
import Foundation

/// One blocking SMTP connection: a TCP socket with read and write deadlines, optionally wrapped in
/// TLS by OpenSSL. Used from one thread only (the mail thread of ``SMTPClient``); never from the
/// cooperative pool.
final class SMTPWire {
    let host: String
    let timeout: Double
    private(set) var fd: Int32 = -1
    private var ctx: OpaquePointer?
    private var ssl: OpaquePointer?
    private var buffer: [UInt8] = []
    /// Whether the connection is encrypted now.
    var isTLS: Bool { ssl != nil }

    init(host: String, timeout: Double) {
        self.host = host
        self.timeout = timeout
    }

    deinit { close() }

    /// Opens the TCP connection, giving up after the timeout.
    func connect(port: Int, register: (Int32) -> Void) throws(SMTPError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw SMTPError(stage: "connect", message: "the mail server's host name \(host) does not resolve", retryable: true)
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let s = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard s >= 0 else { continue }
            register(s)
            let flags = fcntl(s, F_GETFL)
            _ = fcntl(s, F_SETFL, flags | O_NONBLOCK)
            var result = Glibc.connect(s, info.pointee.ai_addr, info.pointee.ai_addrlen)
            if result != 0 && errno == EINPROGRESS {
                var pfd = pollfd(fd: s, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&pfd, 1, Int32(timeout * 1000))
                if ready == 1 {
                    var soError: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(s, SOL_SOCKET, SO_ERROR, &soError, &length)
                    result = soError == 0 ? 0 : -1
                    if soError != 0 { lastError = String(cString: strerror(soError)) }
                } else {
                    lastError = ready == 0 ? "no answer within \(Int(timeout)) s" : String(cString: strerror(errno))
                    result = -1
                }
            } else if result != 0 {
                lastError = String(cString: strerror(errno))
            }
            if result == 0 {
                _ = fcntl(s, F_SETFL, flags)
                var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
                setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                fd = s
                return
            }
            Glibc.close(s)
        }
        throw SMTPError(stage: "connect", message: "cannot connect to the mail server \(host):\(port): \(lastError)", retryable: true)
    }

    /// Starts TLS on the open connection, checking the server's certificate against `caFile` (or the
    /// system's trusted roots) and the host name, unless `verify` is false.
    func startTLS(caFile: String?, verify: Bool) throws(SMTPError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw tlsError("cannot create a TLS context") }
        ctx = context
        if verify {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            if let caFile {
                guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                    throw SMTPError(stage: "tls", message: "cannot read the CA certificates in smtp.ca_file (\(caFile))", retryable: false)
                }
            } else {
                SSL_CTX_set_default_verify_paths(context)
            }
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        }
        guard let connection = SSL_new(context) else { throw tlsError("cannot create a TLS session") }
        ssl = connection
        let isAddress = host.contains(":") || host.split(separator: ".").allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
        if verify {
            if isAddress {
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(connection), host)
            } else {
                SSL_set1_host(connection, host)
            }
        }
        if !isAddress {
            _ = host.withCString {
                SSL_ctrl(connection, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0))
            }
        }
        SSL_set_fd(connection, fd)
        buffer.removeAll()
        guard SSL_connect(connection) == 1 else {
            let verifyResult = SSL_get_verify_result(connection)
            if verify && verifyResult != X509_V_OK {
                let reason = String(cString: X509_verify_cert_error_string(Int(verifyResult)))
                throw SMTPError(
                    stage: "tls", message: "the mail server's TLS certificate is not trusted (\(reason)); set smtp.ca_file to its CA",
                    retryable: false)
            }
            throw tlsError("the TLS handshake with the mail server failed")
        }
    }

    private func tlsError(_ message: String) -> SMTPError {
        var detail = ""
        let code = ERR_get_error()
        if code != 0 {
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &text, text.count)
            detail = ": " + String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        ERR_clear_error()
        return SMTPError(stage: "tls", message: message + detail, retryable: true)
    }

    /// Writes all of `bytes`.
    func write(_ bytes: [UInt8]) throws(SMTPError) {
        var offset = 0
        while offset < bytes.count {
            let n: Int = bytes.withUnsafeBytes { raw in
                let base = raw.baseAddress! + offset
                if let ssl { return Int(SSL_write(ssl, base, Int32(min(bytes.count - offset, Int(Int32.max))))) }
                return Glibc.send(fd, base, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard n > 0 else {
                if n < 0 && errno == EINTR && ssl == nil { continue }
                throw SMTPError(stage: "write", message: "the mail server closed the connection or stopped reading", retryable: true)
            }
            offset += n
        }
    }

    /// Reads one line (without its CRLF).
    func readLine() throws(SMTPError) -> String {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                var line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                if line.last == 0x0D { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard buffer.count < 64 * 1024 else {
                throw SMTPError(stage: "read", message: "the mail server sent a line longer than 64 KiB", retryable: false)
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n: Int = chunk.withUnsafeMutableBytes { raw in
                if let ssl { return Int(SSL_read(ssl, raw.baseAddress, Int32(raw.count))) }
                return recv(fd, raw.baseAddress, raw.count, 0)
            }
            if n > 0 {
                buffer.append(contentsOf: chunk[0..<n])
                continue
            }
            if n < 0 && ssl == nil && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw SMTPError(stage: "read", message: "the mail server did not answer within \(Int(timeout)) s", retryable: true)
            }
            throw SMTPError(stage: "read", message: "the mail server closed the connection", retryable: true)
        }
    }

    func close() {
        if let ssl {
            SSL_shutdown(ssl)
            SSL_free(ssl)
            self.ssl = nil
        }
        if let ctx {
            SSL_CTX_free(ctx)
            self.ctx = nil
        }
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }
}
