import CAVShims
import CLibAV
import Foundation

/// A flag that cancels one operation. libav's blocking I/O sees it through
/// AVIOInterruptCB; the packet loops check it between packets.
final class CancelFlag: @unchecked Sendable {
    // Sendable because the only state is a C atomic int allocated in init and
    // freed in deinit; every access goes through atomic loads and stores.
    let raw: OpaquePointer

    init() {
        guard let p = cav_flag_new() else { fatalError("out of memory allocating a cancel flag") }
        raw = p
    }

    deinit { cav_flag_free(raw) }

    func cancel() { cav_flag_set(raw) }
    var isCancelled: Bool { cav_flag_get(raw) != 0 }

    /// Throws `.cancelled` once the flag is set.
    func check() throws(MediaError) {
        if isCancelled { throw .cancelled }
    }
}

/// Runs libav work on threads of its own, never on Swift's cooperative pool.
enum LibAVThread {
    /// Stack of each operation thread: decoders and muxers keep sizeable frames on it.
    static let stackSize = 8 << 20

    /// Runs `body` on a new thread and waits for it without blocking the caller's
    /// executor. Cancelling the calling task sets the flag `body` receives.
    static func run<T: Sendable>(
        _ name: String,
        _ body: @escaping @Sendable (CancelFlag) throws(MediaError) -> T
    ) async throws(MediaError) -> T {
        if Task.isCancelled { throw .cancelled }
        let flag = CancelFlag()
        let result: Result<T, MediaError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (cont: CheckedContinuation<Result<T, MediaError>, Never>) in
                let thread = Thread {
                    cav_thread_set_name("media.\(name)")
                    cav_log_install()
                    cav_log_clear()
                    let r: Result<T, MediaError>
                    do throws(MediaError) { r = .success(try body(flag)) } catch { r = .failure(error) }
                    cont.resume(returning: r)
                }
                thread.name = "media.\(name)"
                thread.stackSize = stackSize
                thread.start()
            }
        } onCancel: {
            flag.cancel()
        }
        return try result.get()
    }
}

/// Calls a progress callback with a fraction that only grows, at most once per
/// 0.5 % step, and with 1.0 once the output is in place. Used from the one
/// operation thread only.
final class ProgressReporter {
    let callback: (@Sendable (Double) -> Void)?
    var duration: Double = 0
    private var last = -1.0

    init(_ callback: (@Sendable (Double) -> Void)?) {
        self.callback = callback
    }

    func update(seconds: Double) {
        guard let callback, duration > 0, seconds.isFinite else { return }
        let f = min(max(seconds / duration, 0), 0.999)
        if f >= last + 0.005 {
            last = f
            callback(f)
        }
    }

    func finish() {
        guard let callback else { return }
        last = 1
        callback(1)
    }
}
