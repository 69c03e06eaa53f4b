import Dispatch
import Foundation

/// Turns SIGTERM/SIGINT and SIGHUP into callbacks (on a dispatch queue, never in a signal handler).
package final class SignalWatcher: @unchecked Sendable {
    // Invariant: `sources` is written only in init and read only in deinit; DispatchSource is thread-safe.
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "medianest.signals")

    package init(onTerminate: @escaping @Sendable (Int32) -> Void, onReload: @escaping @Sendable () -> Void) {
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { onTerminate(sig) }
            source.resume()
            sources.append(source)
        }
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        hup.setEventHandler { onReload() }
        hup.resume()
        sources.append(hup)
        signal(SIGPIPE, SIG_IGN)
    }

    deinit { sources.forEach { $0.cancel() } }
}
