import Foundation
import Logging
import RedisClient
import Synchronization
import WorkerCore

/// `GET /metrics` (Prometheus text format 0.0.4) and `GET /healthz` (200 while Redis answers, else 503)
/// on `metrics.listen`. A small HTTP/1.1 server on a thread of its own: one request per connection,
/// requests read with a timeout and a size limit, so a slow or hostile client cannot hold it.
package final class MetricsServer: Sendable {
    let host: String
    let port: Int
    let worker: Worker
    let logger: Logger
    private let listener = Mutex<Int32>(-1)

    package init(host: String, port: Int, worker: Worker, logger: Logger) {
        self.host = host
        self.port = port
        self.worker = worker
        self.logger = logger
    }

    /// Binds and starts serving. Throws when the address cannot be bound.
    package func start() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MetricsServerError("cannot create a socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let resolved = host == "localhost" ? "127.0.0.1" : host
        guard inet_pton(AF_INET, resolved, &address.sin_addr) == 1 else {
            close(fd)
            throw MetricsServerError("metrics.listen: '\(host)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw MetricsServerError("cannot listen on \(host):\(port): \(message)")
        }
        listener.withLock { $0 = fd }
        let thread = Thread { [self] in self.serve(fd) }
        thread.name = "metrics-http"
        thread.start()
        logger.info("metrics listening", metadata: ["address": "\(host):\(port)"])
    }

    package func stop() {
        let fd = listener.withLock { fd -> Int32 in
            defer { fd = -1 }; return fd
        }
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
    }

    private func serve(_ fd: Int32) {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 16_384 {
            let n = recv(client, &buffer, buffer.count, 0)
            if n <= 0 { break }
            request.append(contentsOf: buffer[0..<n])
            if request.count >= 4, request.suffix(from: max(request.count - n - 3, 0)).containsCRLFCRLF { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        guard line.count >= 2 else { return respond(client, 400, "text/plain", "bad request\n") }
        let method = line[0]
        let target = line[1].split(separator: "?").first.map(String.init) ?? ""
        guard method == "GET" || method == "HEAD" else { return respond(client, 405, "text/plain", "only GET\n") }
        switch target {
        case "/metrics":
            let body = blocking { await self.renderMetrics() } + DiskMetrics.render(worker.configuration.paths)
            respond(client, 200, "text/plain; version=0.0.4; charset=utf-8", body, head: method == "HEAD")
        case "/healthz":
            let ok = blocking { await self.redisAnswers() }
            respond(client, ok ? 200 : 503, "text/plain", ok ? "ok\n" : "redis unreachable\n", head: method == "HEAD")
        default:
            respond(client, 404, "text/plain", "not found; try /metrics or /healthz\n")
        }
    }

    /// Runs async work from this server thread and waits for it (never on the cooperative pool's threads).
    private func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let box = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let value = await body()
            box.withLock { $0 = value }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }

    private func redisAnswers() async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await self.worker.ping()) ?? false }
            group.addTask {
                try? await Task.sleep(for: .seconds(1)); return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    func renderMetrics() async -> String {
        var gauges = Metrics.Gauges()
        let cfg = worker.configuration
        let paused = worker.status().paused
        for q in cfg.queues {
            gauges.jobsActive[q.name] = worker.pool.activeCount(queue: q.name)
            gauges.queuePaused[q.name] = paused.contains(q.name)
            gauges.queueDepth[q.name] = (try? await worker.queue.depth(queue: q.name)) ?? 0
        }
        await worker.services.integrations.refreshClusterCircuits(redis: worker.services.redis, prefix: worker.services.queue.keys.prefix)
        gauges.circuitOpen = worker.services.integrations.circuitOpen(configuration: cfg)
        gauges.ytDlp = worker.services.integrations.ytDlp.map { ($0.version, $0.channel, $0.jsRuntime, $0.ageDays) }
        let records = worker.records.backlog
        gauges.recordsPending = records.count
        gauges.recordsOldestSeconds = records.oldestSeconds
        gauges.outcomesPending = (try? await worker.outcomesBacklog().count) ?? 0
        return worker.metrics.render(gauges: gauges)
    }

    private func respond(_ client: Int32, _ status: Int, _ type: String, _ body: String, head: Bool = false) {
        let reason =
            [200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][status] ?? "OK"
        let bytes = Array(body.utf8)
        var out = Array(
            "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(bytes.count)\r\nConnection: close\r\n\r\n".utf8)
        if !head { out += bytes }
        var offset = 0
        while offset < out.count {
            let n = out.withUnsafeBytes { send(client, $0.baseAddress! + offset, out.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }
}

package struct MetricsServerError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}

private extension ArraySlice where Element == UInt8 {
    var containsCRLFCRLF: Bool {
        var i = startIndex
        while i + 3 < endIndex {
            if self[i] == 13, self[i + 1] == 10, self[i + 2] == 13, self[i + 3] == 10 { return true }
            i += 1
        }
        return false
    }
}
