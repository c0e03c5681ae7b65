import CBenchPeers
import Foundation
import Synchronization

/// A pthread running one closure, optionally pinned to a CPU; ``join()`` waits for it.
///
/// The harness's producers, flooders and foreign posters run on these (not on the cooperative
/// pool), so that pinning is possible and no async machinery sits between a post and its clock read.
final class PinnedThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: () -> Void
    private let cpu: Int?
    private var joined = false

    /// Starts `body` on a new thread pinned to `cpu` (unpinned when `nil`).
    init(cpu: Int?, _ body: @escaping () -> Void) throws(BenchError) {
        self.body = body
        self.cpu = cpu
        let unmanaged = Unmanaged.passRetained(self)
        let rc = pthread_create(
            &thread, nil,
            { arg in
                let me = Unmanaged<PinnedThread>.fromOpaque(arg!).takeRetainedValue()
                if let cpu = me.cpu { _ = cbp_pin_self(Int32(cpu)) }
                me.body()
                return nil
            }, unmanaged.toOpaque())
        if rc != 0 {
            unmanaged.release()
            throw .runFailed("pthread_create failed: \(String(cString: strerror(rc)))")
        }
    }

    /// Waits for the thread to finish (once).
    func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    /// Runs `body` on a pinned thread and waits for it.
    static func run<T>(cpu: Int?, _ body: @escaping () -> T) throws(BenchError) -> T {
        let box = ResultBox<T>()
        let t = try PinnedThread(cpu: cpu) { box.value = body() }
        t.join()
        return box.value!
    }
}

/// A value handed from one thread to another through a join (the join orders the accesses).
final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

/// One-shot signal from a handler (or consumer) to the waiting harness thread: a semaphore, so the
/// harness sleeps instead of spinning on a core the measured threads need.
final class Completion: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    /// Wakes the waiter.
    func signal() { semaphore.signal() }
    /// Waits up to `seconds`; false on timeout.
    func wait(seconds: Double) -> Bool {
        semaphore.wait(timeout: .now() + seconds) == .success
    }
}

/// Preallocated latency samples written by one consumer thread, read after the round.
final class SampleBuffer: @unchecked Sendable {
    let base: UnsafeMutablePointer<UInt64>
    let capacity: Int
    /// Samples written: only the consumer writes it; readers use it after a release/acquire edge.
    let count = Atomic<Int>(0)

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        base = .allocate(capacity: self.capacity)
        base.initialize(repeating: 0, count: self.capacity)
    }
    deinit { base.deallocate() }

    /// Appends one sample (dropped when full). Consumer thread only.
    @inline(__always)
    func append(_ ns: UInt64) {
        let n = count.load(ordering: .relaxed)
        if n < capacity {
            base[n] = ns
            count.store(n + 1, ordering: .releasing)
        }
    }

    /// The samples written so far.
    var values: [UInt64] {
        Array(UnsafeBufferPointer(start: base, count: count.load(ordering: .acquiring)))
    }

    /// Forgets every sample.
    func reset() { count.store(0, ordering: .releasing) }
}

/// Spin-wait hint.
@inline(__always) func relax() { cbp_relax() }

/// The harness clock: CLOCK_MONOTONIC in ns (the same clock at both ends of every latency).
@inline(__always) func nowNS() -> UInt64 { cbp_now_ns() }
