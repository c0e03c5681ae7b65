import Foundation

/// A value behind a pthread mutex (NSLock), for cold paths: shutdown reports, retuning. Chosen over
/// `Synchronization.Mutex` because ThreadSanitizer sees pthread locks, so `--sanitize=thread`
/// runs stay free of false reports.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
