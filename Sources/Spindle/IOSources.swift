import CSpindle
import Foundation
import Synchronization

/// What a timer's handler receives: one per firing, and one `cancelled` event after
/// ``SourceHandle/cancel()``.
public struct TimerEvent: Sendable, Hashable {
    /// How late the firing was handled: from the deadline to the worker reaping it.
    public var lateness: Duration
    /// Periodic timers: deadlines that passed while the worker was behind, folded into this
    /// firing (never fired one by one, never silently lost). 0 when on time.
    public var coalesced: Int
    /// No event of this timer follows (a one-shot timer's firing, or the `cancelled` event).
    public var isFinal: Bool
    /// The event that ends a cancelled timer.
    public var isCancelled: Bool
    /// The kernel refused the timer (the event is final).
    public var error: POSIXErrorCode?
    /// The latest deadline this firing stands for (`CLOCK_MONOTONIC` ns; with ``coalesced`` > 0,
    /// the last of the folded ones). 0 on the `cancelled` event.
    public var deadlineNanoseconds: UInt64
    /// The tag the timer was started with (``WorkerContext/startTimer(after:every:as:tag:)``).
    public var tag: UInt64

    @usableFromInline
    init(_ e: sp_io_event) {
        deadlineNanoseconds = e.reserved
        tag = e.tag
        lateness = .nanoseconds(Int64(clamping: e.value))
        coalesced = Int(clamping: e.count)
        isFinal = e.flags & SP_IO_FINAL != 0
        isCancelled = e.flags & SP_IO_CANCELLED != 0
        error = e.result < 0 ? POSIXErrorCode(rawValue: -e.result) : nil
    }
}

/// Readiness conditions of a file descriptor (`poll(2)` bits).
public struct PollEvents: OptionSet, Sendable, Hashable {
    /// The `poll(2)` bits.
    public let rawValue: UInt32
    /// Creates a set from `poll(2)` bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Data to read (`POLLIN`).
    public static let readable = PollEvents(rawValue: UInt32(POLLIN))
    /// Room to write (`POLLOUT`).
    public static let writable = PollEvents(rawValue: UInt32(POLLOUT))
    /// Urgent data (`POLLPRI`).
    public static let priority = PollEvents(rawValue: UInt32(POLLPRI))
    /// An error condition (`POLLERR`; reported, never asked for).
    public static let error = PollEvents(rawValue: UInt32(POLLERR))
    /// The peer hung up (`POLLHUP`; reported, never asked for).
    public static let hangUp = PollEvents(rawValue: UInt32(POLLHUP))
}

/// What an fd watch's handler receives: one event per change of readiness (edge-like on both
/// backends: read until `EAGAIN` before expecting another), and one `cancelled` event after
/// ``SourceHandle/cancel()``.
public struct Readiness: Sendable, Hashable {
    /// What the fd is ready for.
    public var events: PollEvents
    /// No event of this watch follows.
    public var isFinal: Bool
    /// The event that ends a cancelled watch.
    public var isCancelled: Bool
    /// The kernel ended the watch with an error (e.g. `EBADF`: the fd was closed under it).
    public var error: POSIXErrorCode?
    /// The tag the watch was added with (``WorkerContext/watch(fd:for:as:tag:)``; 0 for a builder's watch).
    public var tag: UInt64

    @usableFromInline
    init(_ e: sp_io_event) {
        tag = e.tag
        events = PollEvents(rawValue: e.result >= 0 ? UInt32(e.result) : 0)
        isFinal = e.flags & SP_IO_FINAL != 0
        isCancelled = e.flags & SP_IO_CANCELLED != 0
        error = e.result < 0 ? POSIXErrorCode(rawValue: -e.result) : nil
    }
}

/// A signal a ``Engine/Builder/signals(_:lane:on:handler:)`` source can own.
public struct Signal: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The signal number.
    public let rawValue: Int32
    /// A signal by number.
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// `SIGTERM`: a polite request to stop (what `kill` and service managers send).
    public static let term = Signal(rawValue: SIGTERM)
    /// `SIGINT`: Ctrl-C.
    public static let int = Signal(rawValue: SIGINT)
    /// `SIGHUP`: reload, by convention.
    public static let hup = Signal(rawValue: SIGHUP)
    /// `SIGUSR1`.
    public static let usr1 = Signal(rawValue: SIGUSR1)
    /// `SIGUSR2`.
    public static let usr2 = Signal(rawValue: SIGUSR2)
    /// "SIGTERM"-style name.
    public var description: String {
        switch rawValue {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGHUP: return "SIGHUP"
        case SIGUSR1: return "SIGUSR1"
        case SIGUSR2: return "SIGUSR2"
        default: return "signal \(rawValue)"
        }
    }
}

/// What a signal source's handler receives: one event per signal delivered (several deliveries of
/// one signal before the worker looks may arrive as one), and one `cancelled` event.
public struct SignalEvent: Sendable, Hashable {
    /// The signal (`nil` on the `cancelled` event).
    public var signal: Signal?
    /// The event that ends a cancelled source.
    public var isCancelled: Bool
    /// No event of this source follows.
    public var isFinal: Bool

    @usableFromInline
    init(_ e: sp_io_event) {
        signal = e.result > 0 ? Signal(rawValue: e.result) : nil
        isCancelled = e.flags & SP_IO_CANCELLED != 0
        isFinal = e.flags & SP_IO_FINAL != 0
    }
}

/// A registered I/O source (timer, fd watch, signals). It lives on one worker; its events enter
/// the lane it was registered with, where the scheduler treats them like posts.
public final class SourceHandle: Sendable {
    /// The worker the source lives on.
    public let worker: WorkerID
    /// What it is ("timer every 1 ms", "fd 7 readable", "signals SIGTERM").
    public let label: String
    let id = Atomic<UInt64>(0)
    let port = Atomic<Int>(-1)
    /// The C engine the source was armed on (set on its worker before `start()` returns).
    let enginePointer = Atomic<UInt>(0)
    let finished = Atomic<Bool>(false)
    let armError = Mutex<String?>(nil)
    private let engine = Mutex<WeakEngine>(WeakEngine())

    init(worker: WorkerID, label: String) {
        self.worker = worker
        self.label = label
    }

    func attach(_ e: Engine) { engine.withLock { $0.value = e } }

    /// A listener's local port once the engine has started (the one the kernel picked for port 0).
    public var localPort: Int? {
        let p = port.load(ordering: .acquiring)
        return p >= 0 ? p : nil
    }

    /// True once its final event was handed to its handler.
    public var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// Cancels the source. On its own worker (inside a handler) no event of it is handled after
    /// this returns except exactly one final `cancelled` event; from any other thread the request
    /// is handed to the worker and the `cancelled` event says when it took effect.
    /// - Returns: false when the source had already ended (its final event came) or the engine is
    ///   gone; true when a `cancelled` event will follow.
    @discardableResult
    public func cancel() -> Bool {
        guard !finished.load(ordering: .acquiring) else { return false }
        // On one of the engine's own workers (a handler) the engine is alive and armed this source
        // already, even while `start()` has not returned yet: cancel through the C engine directly.
        if let raw = OpaquePointer(bitPattern: enginePointer.load(ordering: .acquiring)), sp_current_worker(raw) != nil {
            return sp_engine_cancel_source(raw, UInt32(worker.rawValue), id.load(ordering: .acquiring)) == SP_OK.rawValue
        }
        guard let e = engine.withLock({ $0.value }) else { return false }
        return sp_engine_cancel_source(e.handle, UInt32(worker.rawValue), id.load(ordering: .acquiring)) == SP_OK.rawValue
    }
}

struct WeakEngine: @unchecked Sendable { weak var value: Engine? }

/// A source waiting for its worker to start: armed on the worker's own thread (it owns the ring).
/// `spec.addr` is always nil here (a listener's address is in `address`, pointed to only while the
/// worker arms it), so the C struct holds no pointer across threads.
struct PendingSource: @unchecked Sendable {
    let handle: SourceHandle
    let spec: sp_source_spec
    var address: [UInt8] = []
}

extension Engine {
    /// Kernel-side counts of a worker's I/O: live sources, multishot re-arms, completions held a
    /// round by a full lane, and the kernel entries a busy worker made for I/O.
    public func ioStats(_ worker: WorkerID) -> IOStats {
        var s = sp_io_stats()
        _ = sp_engine_io_stats(handle, UInt32(worker.rawValue), &s)
        return IOStats(live: Int(s.live), rearms: s.rearms, stalled: s.stalled, enters: s.enters, nobufs: s.nobufs,
                       buffersLent: Int(s.buffers_lent), shortSends: s.short_sends)
    }
}

/// A worker's I/O counters (``Engine/ioStats(_:)``).
public struct IOStats: Sendable, Hashable {
    /// Sources armed on the worker (listeners and connections included).
    public var live: Int
    /// Multishot requests the kernel ended and the engine re-armed.
    public var rearms: UInt64
    /// Completions held back a round because their lane's queue was full (never dropped).
    public var stalled: UInt64
    /// Kernel entries a busy worker made for I/O (`io_uring_enter`, or `epoll_wait` with no timeout).
    public var enters: UInt64
    /// Receives stopped because the buffer ring was empty (resumed when buffers came back).
    public var nobufs: UInt64
    /// Receive buffers lent to events not yet handled.
    public var buffersLent: Int
    /// Sends the kernel completed short; the engine sent the rest.
    public var shortSends: UInt64
}
