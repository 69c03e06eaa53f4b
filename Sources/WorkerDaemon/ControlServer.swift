import Foundation
import JSON
import Logging
import Synchronization
import WorkerCore

/// Who is at the other end of a control connection, as the kernel says (`SO_PEERCRED`).
package struct ControlPeer: Sendable, Equatable, CustomStringConvertible {
    package var pid: Int32
    package var uid: UInt32
    package var gid: UInt32
    /// Supplementary groups (`SO_PEERGROUPS`, else `/proc/<pid>/status`).
    package var groups: [UInt32]

    package init(pid: Int32, uid: UInt32, gid: UInt32, groups: [UInt32]) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    /// The user's login name, when the uid has one.
    package var userName: String? { ControlPeer.name(ofUser: uid) }

    /// `uid 1000 (alice)`.
    package var description: String { "uid \(uid)" + (userName.map { " (\($0))" } ?? "") }

    static func name(ofUser uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else { return nil }
        return String(cString: name)
    }

    static func name(ofGroup gid: UInt32) -> String? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 8192)
        guard getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.gr_name else { return nil }
        return String(cString: name)
    }
}

/// Why the control socket could not be opened; each says what to change.
package struct ControlServerError: Error, Sendable, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}

/// The control socket (contract section 8): a Unix stream socket at `control.socket`, created with
/// `control.mode`, one JSON object per line each way.
///
/// One thread of its own runs a `poll` loop over the listening socket and every connection, so
/// hundreds of clients cost no threads and nothing here blocks the cooperative pool. A complete
/// line is handed to `handler` in a task; its answer comes back through a wake-up pipe and is
/// written when the socket takes it. Requests on one connection are answered in order.
///
/// Only the daemon's own user, root, and members of the socket file's group may talk to it; any
/// other peer gets one refusal line and is disconnected. A malformed or oversized line gets an
/// error answer on its own connection and harms nothing else.
package final class ControlServer: Sendable {
    /// Answers one request line (without its newline) with one JSON object (without a newline).
    package typealias Handler = @Sendable (_ line: [UInt8], _ peer: ControlPeer) async -> String

    /// Longest request line accepted.
    package static let maxLineBytes = 65_536
    /// Connections beyond this are refused with an answer.
    package static let maxConnections = 1024
    /// A connection with nothing to do for this long is closed.
    static let idleTimeout: Double = 600

    let path: String
    let mode: UInt16
    let logger: Logger
    let handler: Handler

    private struct Shared {
        var listener: Int32 = -1
        var wakeRead: Int32 = -1
        var wakeWrite: Int32 = -1
        var stopping = false
        var socketIdentity: (dev: UInt64, ino: UInt64)?
        /// Answers from finished requests, by connection id, waiting for the loop.
        var outbox: [(Int, [UInt8])] = []
    }
    private let shared = Mutex(Shared())

    package init(path: String, mode: UInt16, logger: Logger, handler: @escaping Handler) {
        self.path = path
        self.mode = mode
        self.logger = logger
        self.handler = handler
    }

    /// Creates the socket and starts serving it.
    package func start() throws(ControlServerError) {
        guard path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
            throw ControlServerError("control.socket '\(path)' is longer than a Unix socket path may be (107 bytes); choose a shorter path")
        }
        try removeStaleSocket()
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty && !FileManager.default.fileExists(atPath: folder) {
            do {
                try FileManager.default.createDirectory(
                    atPath: folder, withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o755])
            } catch {
                throw ControlServerError("cannot create the folder of control.socket (\(folder)): \(error.localizedDescription)")
            }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw ControlServerError("cannot create the control socket: \(Self.errorText())") }
        var address = Self.address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let text = Self.errorText()
            close(fd)
            throw ControlServerError(
                "cannot create the control socket at \(path): \(text); check that its folder exists and the daemon's user may write there")
        }
        // Permissions before listen: nobody can connect before they hold.
        guard chmod(path, mode_t(mode)) == 0, listen(fd, 512) == 0 else {
            let text = Self.errorText()
            close(fd)
            unlink(path)
            throw ControlServerError("cannot set up the control socket at \(path): \(text)")
        }
        var st = stat()
        let identity: (UInt64, UInt64)? = stat(path, &st) == 0 ? (UInt64(st.st_dev), UInt64(st.st_ino)) : nil
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0, Self.makeNonBlocking(pipeFDs[0]), Self.makeNonBlocking(pipeFDs[1]) else {
            let text = Self.errorText()
            close(fd)
            unlink(path)
            throw ControlServerError("cannot create the control socket's wake-up pipe: \(text)")
        }
        shared.withLock {
            $0.listener = fd
            $0.wakeRead = pipeFDs[0]
            $0.wakeWrite = pipeFDs[1]
            $0.socketIdentity = identity
        }
        let wakeRead = pipeFDs[0]
        let thread = Thread { [self] in
            self.serve(listener: fd, wake: wakeRead)
        }
        thread.name = "control-socket"
        thread.start()
        logger.info("control socket listening", metadata: ["path": "\(path)", "mode": "\(String(mode, radix: 8))"])
    }

    /// Stops serving: the socket file goes at once, the loop thread closes the connections.
    package func stop() {
        let (wake, identity) = shared.withLock { s -> (Int32, (dev: UInt64, ino: UInt64)?) in
            s.stopping = true
            return (s.wakeWrite, s.socketIdentity)
        }
        if let identity {
            var st = stat()
            if stat(path, &st) == 0, UInt64(st.st_dev) == identity.dev, UInt64(st.st_ino) == identity.ino { unlink(path) }
        }
        if wake >= 0 {
            var byte: UInt8 = 1
            _ = write(wake, &byte, 1)
        }
    }

    /// A socket file left by a daemon that died is removed; a live one, or something else, is an error.
    private func removeStaleSocket() throws(ControlServerError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard st.st_mode & S_IFMT == S_IFSOCK else {
            throw ControlServerError("\(path) exists and is not a socket; remove it or set control.socket to another path")
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if probe >= 0 {
            defer { close(probe) }
            var address = Self.address(path)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if connected == 0 {
                throw ControlServerError(
                    "another process already listens on the control socket \(path) (is another daemon running with this configuration?); stop it or set control.socket to another path"
                )
            }
        }
        unlink(path)
    }

    private func deliver(_ connection: Int, _ answer: String) {
        let wake = shared.withLock { s -> Int32 in
            s.outbox.append((connection, Array(answer.utf8) + [10]))
            return s.wakeWrite
        }
        var byte: UInt8 = 1
        _ = write(wake, &byte, 1)
    }

    // MARK: - The loop (runs on the control thread only)

    /// One connection's state; touched by the loop thread only.
    private final class Connection {
        enum Item {
            case line([UInt8])
            case answer([UInt8])
        }
        let id: Int
        let fd: Int32
        let peer: ControlPeer
        var partial: [UInt8] = []
        var discarding = false
        var pending: [Item] = []
        var busy = false
        var out: [UInt8] = []
        var readClosed = false
        var broken = false
        var lastActive = Date()

        init(id: Int, fd: Int32, peer: ControlPeer) {
            self.id = id
            self.fd = fd
            self.peer = peer
        }

        var wantsRead: Bool { !readClosed && !broken && pending.count < 64 && out.count < 1 << 20 }
        var finished: Bool { broken || (readClosed && !busy && pending.isEmpty && out.isEmpty) }
    }

    private func serve(listener: Int32, wake: Int32) {
        var connections: [Int: Connection] = [:]
        var nextID = 1
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var lastSweep = Date()
        while !shared.withLock({ $0.stopping }) {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            let order = Array(connections.values)
            for c in order {
                var events: Int16 = 0
                if c.wantsRead { events |= Int16(POLLIN) }
                if !c.out.isEmpty { events |= Int16(POLLOUT) }
                fds.append(pollfd(fd: c.fd, events: events, revents: 0))
            }
            let ready = poll(&fds, nfds_t(fds.count), 1000)
            if ready < 0 && errno != EINTR {
                logger.error("control socket: poll failed; the control socket stops", metadata: ["error": "\(Self.errorText())"])
                break
            }
            if shared.withLock({ $0.stopping }) { break }

            // Answers of finished requests.
            if fds[1].revents != 0 {
                while read(wake, &buffer, buffer.count) > 0 {}
            }
            let answers = shared.withLock { s -> [(Int, [UInt8])] in
                defer { s.outbox = [] }; return s.outbox
            }
            for (id, bytes) in answers {
                guard let c = connections[id] else { continue }
                c.out += bytes
                c.busy = false
                c.lastActive = Date()
                dispatchNext(c)
            }

            // New connections.
            if fds[0].revents & Int16(POLLIN) != 0 {
                while true {
                    let client = accept(listener, nil, nil)
                    if client < 0 { break }
                    guard Self.makeNonBlocking(client) else { close(client); continue }
                    guard let peer = Self.peer(of: client) else { close(client); continue }
                    if let refusal = refusal(for: peer) {
                        logger.warning("control socket: connection refused", metadata: ["peer": "\(peer)", "pid": "\(peer.pid)"])
                        Self.sendNow(client, Array((#"{"ok":false,"error":"# + JSONText.quote(refusal) + "}\n").utf8))
                        close(client)
                        continue
                    }
                    if connections.count >= Self.maxConnections {
                        Self.sendNow(
                            client,
                            Array(#"{"ok":false,"error":"the control socket has too many connections open; try again shortly"}\#n"#.utf8))
                        close(client)
                        continue
                    }
                    connections[nextID] = Connection(id: nextID, fd: client, peer: peer)
                    nextID += 1
                }
            }

            // Traffic on existing connections.
            for (index, c) in order.enumerated() {
                let revents = fds[index + 2].revents
                guard revents != 0 else { continue }
                if revents & Int16(POLLERR | POLLNVAL) != 0 {
                    c.broken = true
                    continue
                }
                if revents & Int16(POLLIN | POLLHUP) != 0 && c.wantsRead {
                    readAvailable(c, &buffer)
                }
                // Hung up both ways: nobody is left to read an answer.
                if revents & Int16(POLLHUP) != 0 { c.broken = true }
                flush(c)
            }
            for c in connections.values where !c.out.isEmpty { flush(c) }

            // Finished, broken and idle connections.
            let now = Date()
            let sweepIdle = now.timeIntervalSince(lastSweep) > 5
            if sweepIdle { lastSweep = now }
            for (id, c) in connections
            where c.finished
                || (sweepIdle && !c.busy && now.timeIntervalSince(c.lastActive) > Self.idleTimeout)
            {
                close(c.fd)
                connections[id] = nil
            }
        }
        for c in connections.values { close(c.fd) }
        let fds = shared.withLock { s -> [Int32] in
            defer { s.listener = -1; s.wakeRead = -1; s.wakeWrite = -1 }
            return [s.listener, s.wakeRead, s.wakeWrite]
        }
        for fd in fds where fd >= 0 { close(fd) }
    }

    private func readAvailable(_ c: Connection, _ buffer: inout [UInt8]) {
        while c.wantsRead {
            let n = recv(c.fd, &buffer, buffer.count, 0)
            if n > 0 {
                c.lastActive = Date()
                ingest(c, buffer[0..<n])
                continue
            }
            if n == 0 {
                c.readClosed = true
            } else if errno == EINTR {
                continue
            } else if errno != EAGAIN && errno != EWOULDBLOCK {
                c.broken = true
            }
            break
        }
        dispatchNext(c)
    }

    /// Splits received bytes into lines; an overlong line is answered with an error and skipped to its end.
    private func ingest(_ c: Connection, _ bytes: ArraySlice<UInt8>) {
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let newline = bytes[start...].firstIndex(of: 10)
            let chunk = bytes[start..<(newline ?? bytes.endIndex)]
            if !c.discarding {
                c.partial += chunk
                if c.partial.count > Self.maxLineBytes {
                    c.partial = []
                    c.discarding = true
                    c.pending.append(
                        .answer(
                            Array(
                                #"{"ok":false,"error":"the request line is longer than 65536 bytes; send one JSON object per line"}\#n"#
                                    .utf8)))
                }
            }
            guard let newline else { break }
            if c.discarding {
                c.discarding = false
            } else {
                var line = c.partial
                c.partial = []
                if line.last == 13 { line.removeLast() }
                if line.contains(where: { $0 != 32 && $0 != 9 }) { c.pending.append(.line(line)) }
            }
            start = bytes.index(after: newline)
        }
    }

    /// Starts the next request of a connection when none is in flight (answers stay in order).
    private func dispatchNext(_ c: Connection) {
        while !c.busy, !c.pending.isEmpty {
            switch c.pending.removeFirst() {
            case .answer(let bytes):
                c.out += bytes
            case .line(let line):
                c.busy = true
                let id = c.id
                let peer = c.peer
                Task { [self] in
                    let answer = await handler(line, peer)
                    deliver(id, answer)
                }
            }
        }
    }

    private func flush(_ c: Connection) {
        while !c.out.isEmpty && !c.broken {
            let n = c.out.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                c.out.removeFirst(n)
                c.lastActive = Date()
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK { c.broken = true }
                return
            }
        }
    }

    // MARK: - Peers

    /// Why a peer may not use the socket, or nil when it may: the daemon's user, root, and members
    /// (primary or supplementary) of the socket file's group may.
    func refusal(for peer: ControlPeer) -> String? {
        if peer.uid == 0 || peer.uid == geteuid() { return nil }
        var st = stat()
        guard stat(path, &st) == 0 else { return "the control socket is being removed" }
        let group = UInt32(st.st_gid)
        if peer.gid == group || peer.groups.contains(group) { return nil }
        let daemonUser = ControlPeer.name(ofUser: geteuid()) ?? "uid \(geteuid())"
        let groupName = ControlPeer.name(ofGroup: group) ?? "gid \(group)"
        return
            "permission denied: \(peer) is neither the daemon's user (\(daemonUser)) nor in the control socket's group (\(groupName)); run ctl as \(daemonUser) or add the user to the group \(groupName)"
    }

    /// The credentials of a connected peer.
    static func peer(of fd: Int32) -> ControlPeer? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (Glibc hides it behind _GNU_SOURCE).
        var cred: [UInt32] = [0, 0, 0]
        var length = socklen_t(12)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0, length == 12 else { return nil }
        let pid = Int32(bitPattern: cred[0])
        return ControlPeer(pid: pid, uid: cred[1], gid: cred[2], groups: groups(of: fd, pid: pid))
    }

    /// `SO_PEERGROUPS` (Linux 4.13), else the `Groups:` line of `/proc/<pid>/status`.
    static func groups(of fd: Int32, pid: Int32) -> [UInt32] {
        let soPeerGroups: Int32 = 59
        var groups = [gid_t](repeating: 0, count: 64)
        var length = socklen_t(groups.count * MemoryLayout<gid_t>.size)
        if getsockopt(fd, SOL_SOCKET, soPeerGroups, &groups, &length) == 0 {
            return Array(groups.prefix(Int(length) / MemoryLayout<gid_t>.size))
        }
        if errno == ERANGE {
            groups = [gid_t](repeating: 0, count: Int(length) / MemoryLayout<gid_t>.size + 1)
            length = socklen_t(groups.count * MemoryLayout<gid_t>.size)
            if getsockopt(fd, SOL_SOCKET, soPeerGroups, &groups, &length) == 0 {
                return Array(groups.prefix(Int(length) / MemoryLayout<gid_t>.size))
            }
        }
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Groups:") })
        else { return [] }
        return line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
    }

    // MARK: - Helpers

    static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        return address
    }

    /// Sets `O_NONBLOCK` and `FD_CLOEXEC` (children such as yt-dlp must not inherit control connections).
    static func makeNonBlocking(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0
    }

    /// A best-effort write to a fresh socket (a refusal before closing it).
    static func sendNow(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    static func errorText() -> String { String(cString: strerror(errno)) }
}

extension Daemon {
    /// Opens the control socket at `control.socket` with `control.mode`, serving `ControlCommands`;
    /// `reload` re-reads jobs.yml as SIGHUP does. Nil when it cannot be opened (logged; the daemon
    /// runs on without it).
    func startControlServer() -> ControlServer? {
        let cfg = worker.configuration
        let commands = ControlCommands(worker: worker, reload: { [self] in await self.reload() })
        let server = ControlServer(path: cfg.control.socket, mode: cfg.control.mode, logger: logger) { line, peer in
            await commands.handle(line, peer: peer)
        }
        do {
            try server.start()
            return server
        } catch {
            logger.error("control socket not started; `medianest-worker ctl` cannot reach this daemon", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
