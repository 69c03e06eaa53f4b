import Foundation

/// A value guarded by a lock, readable and writable from any thread.
///
/// `@unchecked Sendable` invariant: `value` is only ever read or written inside
/// `withLock`, which holds `lock` for the whole access, and `Value` is `Sendable`,
/// so handing it across threads is sound.
final class LockedState<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    /// Wraps `value`.
    init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access to the value. Keep `body` short and never
    /// await or resume continuations inside it.
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
