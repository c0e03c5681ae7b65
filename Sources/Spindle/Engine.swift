import CSpindle
import Foundation

/// A running Spindle engine: one pinned worker per configured CPU, each with its priority lanes.
///
/// Post from any thread with ``post(_:as:lane:to:)-198vr``; stop with ``shutdown(deadline:)``.
/// Several engines may live in one process; an engine that has shut down can be replaced by a new
/// one. A trap in any handler ends the process.
public final class Engine: Sendable {
    @usableFromInline nonisolated(unsafe) let handle: OpaquePointer
    let core: EngineCore
    /// The configuration it runs with.
    public let configuration: Configuration
    @usableFromInline let builderID: UInt64
    /// Number of workers (`WorkerID(0)..<WorkerID(workerCount)`).
    public let workerCount: Int
    @usableFromInline let _workerCount: UInt32
    private let state = ShutdownState()
    let tuning = Locked<Configuration?>(nil)

    init(handle: OpaquePointer, core: EngineCore, configuration: Configuration, builderID: UInt64) {
        self.handle = handle
        self.core = core
        self.configuration = configuration
        self.builderID = builderID
        self.workerCount = configuration.cpus.count
        self._workerCount = UInt32(configuration.cpus.count)
    }

    deinit {
        // Never returns on a worker of this engine: there the last reference cannot be dropped
        // without the handler holding it, and C refuses (the engine is then leaked, not freed twice).
        if sp_engine_shutdown(handle, sp_now_ns()) == SP_OK.rawValue {
            core.afterShutdown()
            sp_engine_destroy(handle)
            core.jobs?.releaseExecutors()
        }
    }

    @inlinable
    func _result(_ rc: Int32, _ dest: UInt32, _ lane: Lane) throws(PostError) -> PostResult {
        if rc == SP_OK.rawValue { return .enqueued }
        if rc == SP_EDROPPED.rawValue { return .dropped }
        throw PostError(PostError.code(for: rc), worker: WorkerID(Int(sp_resolve_dest(handle, dest))), lane: lane)
    }

    @inlinable
    func _check<E>(_ kind: EventKind<E>) {
        precondition(kind.builderID == builderID, "EventKind for \(E.self) was registered with another engine's builder")
    }

    /// Posts an inline event: 48 bytes at most are copied into a ring slot; no allocation, no lock,
    /// and no syscall while the destination worker is awake.
    ///
    /// From a worker thread of this engine it takes that worker's SPSC ring to the destination;
    /// from any other thread the destination's MPSC ring. Order holds per (producing thread, lane,
    /// destination).
    /// - Returns: ``PostResult/enqueued``, or ``PostResult/dropped`` on a full `drop` lane.
    /// - Throws: ``PostError`` (`laneFull`, `stopped`, `timedOut`, `noSuchWorker`).
    @inlinable @discardableResult
    public func post<E: InlineEvent>(_ event: E, as kind: EventKind<E>, lane: Lane, to destination: Destination)
        throws(PostError) -> PostResult
    {
        _check(kind)
        let dest = destination.raw(workerCount: _workerCount)
        var e = event
        let rc = withUnsafeBytes(of: &e) {
            sp_post(handle, dest, UInt32(truncatingIfNeeded: lane.index), kind.index, 0, $0.baseAddress,
                    UInt32(MemoryLayout<E>.size))
        }
        return try _result(rc, dest, lane)
    }

    /// Posts a boxed event (one allocation per post). The box is released exactly once: after the
    /// handler, here when the post is rejected or dropped, or at shutdown if never handled.
    @inlinable @discardableResult
    public func post<E: Event>(_ event: E, as kind: EventKind<E>, lane: Lane, to destination: Destination)
        throws(PostError) -> PostResult
    {
        _check(kind)
        let dest = destination.raw(workerCount: _workerCount)
        var box: UnsafeMutableRawPointer? = Unmanaged.passRetained(EventBox(event)).toOpaque()
        let rc = withUnsafeBytes(of: &box) {
            sp_post(handle, dest, UInt32(truncatingIfNeeded: lane.index), kind.index, SP_SLOT_BOXED, $0.baseAddress,
                    UInt32(MemoryLayout<UnsafeMutableRawPointer>.size))
        }
        if rc != SP_OK.rawValue { Unmanaged<EventBox<E>>.fromOpaque(box!).release() }
        return try _result(rc, dest, lane)
    }

    /// Posts many inline events to one destination: all or nothing, one publish.
    /// - Throws: ``PostError`` when the ring lacks room for all of them (nothing is enqueued), or
    ///   `batchTooLarge` when they exceed the lane's capacity.
    @inlinable @discardableResult
    public func post<E: InlineEvent>(contentsOf events: UnsafeBufferPointer<E>, as kind: EventKind<E>, lane: Lane,
                                     to destination: Destination) throws(PostError) -> PostResult
    {
        _check(kind)
        let dest = destination.raw(workerCount: _workerCount)
        let rc = sp_post_batch(handle, dest, UInt32(truncatingIfNeeded: lane.index), kind.index, 0,
                               UnsafeRawPointer(events.baseAddress), MemoryLayout<E>.stride, UInt32(MemoryLayout<E>.size),
                               UInt32(truncatingIfNeeded: events.count))
        return try _result(rc, dest, lane)
    }

    /// Posts an array of inline events to one destination: all or nothing, one publish.
    @inlinable @discardableResult
    public func post<E: InlineEvent>(contentsOf events: [E], as kind: EventKind<E>, lane: Lane,
                                     to destination: Destination) throws(PostError) -> PostResult
    {
        try events.withUnsafeBufferPointer { (buf) throws(PostError) in
            try post(contentsOf: buf, as: kind, lane: lane, to: destination)
        }
    }

    /// Stops the engine: foreign posts get ``PostError/Code/stopped`` from now on; handlers may
    /// still post while the lanes drain; when every lane is empty and no handler runs (or the
    /// deadline passes) the workers exit. Idempotent: a second call returns the first report.
    public func shutdown(deadline: ContinuousClock.Instant) async -> ShutdownReport {
        await withCheckedContinuation { (cont: CheckedContinuation<ShutdownReport, Never>) in
            let engine = self
            let thread = Thread {
                cont.resume(returning: (try? engine.shutdownBlocking(deadline: deadline)) ?? engine.makeReport())
            }
            thread.start()
        }
    }

    /// ``shutdown(deadline:)`` for synchronous callers: blocks the calling thread.
    /// - Throws: ``SpindleError/Code/onWorkerThread`` when called from one of this engine's workers.
    public func shutdownBlocking(deadline: ContinuousClock.Instant) throws(SpindleError) -> ShutdownReport {
        if sp_current_worker(handle) != nil {
            throw SpindleError(.onWorkerThread, "shutdown called from worker \(sp_worker_id(sp_current_worker(handle))) of this engine: a worker cannot wait for itself to drain; call it from another thread")
        }
        return state.once {
            let remaining = ContinuousClock.now.duration(to: deadline)
            let ns = remaining <= .zero ? 0 : (try? Configuration.nanoseconds(remaining, key: "deadline")) ?? 0
            let start = sp_now_ns()
            _ = sp_engine_shutdown(handle, start &+ max(ns, 1))
            core.afterShutdown()
            return makeReport()
        }
    }

    /// The final counts per worker and lane.
    func makeReport() -> ShutdownReport {
        var perWorker: [[LaneStats]] = []
        for w in 0..<workerCount {
            perWorker.append((0..<configuration.lanes.count).map { stats(worker: WorkerID(w), lane: Lane(index: $0)) })
        }
        return ShutdownReport(laneNames: core.laneNames, perWorker: perWorker)
    }

    /// Counts for one (worker, lane). Exact at quiescence; while running never off by more than the
    /// batch in flight.
    public func stats(worker: WorkerID, lane: Lane) -> LaneStats {
        var s = sp_lane_stats()
        _ = sp_engine_lane_stats(handle, UInt32(worker.rawValue), UInt32(lane.index), &s)
        return LaneStats(s)
    }

    /// Counts for one lane summed over every worker.
    public func stats(lane: Lane) -> LaneStats {
        (0..<workerCount).reduce(LaneStats()) { $0 + stats(worker: WorkerID($1), lane: lane) }
    }

    /// Per-worker loop counters (rounds, batches, sleeps, wake-ups sent, slow batches).
    public func workerStats(_ worker: WorkerID) -> WorkerStats {
        var s = sp_worker_stats()
        _ = sp_engine_worker_stats(handle, UInt32(worker.rawValue), &s)
        return WorkerStats(s, foreignWakeups: sp_engine_foreign_wakeups(handle, UInt32(worker.rawValue)))
    }

    /// Events handled so far on every worker and lane (a progress measure for watchdogs).
    public var handledTotal: UInt64 {
        (0..<configuration.lanes.count).reduce(0) { $0 + stats(lane: Lane(index: $1)).handled }
    }

    /// One line per worker for a stall report: its sleep flag, sleeps, wake-ups sent and received,
    /// and what each lane holds.
    ///
    /// ```
    /// worker 1: sleeping yes, sleeps 5120, wake-ups sent 0, foreign wake-ups 5119, handled 9000; pending critical 0, high 0, normal 4096, bulk 0
    /// ```
    public func stallReport() -> String {
        (0..<workerCount).map { w in
            let ws = workerStats(WorkerID(w))
            let lanes = configuration.lanes.indices.map { stats(worker: WorkerID(w), lane: Lane(index: $0)) }
            let pending = zip(configuration.lanes, lanes).map { "\($0.name) \($1.pending)" }.joined(separator: ", ")
            return "worker \(w): sleeping \(ws.isSleeping ? "yes" : "no"), sleeps \(ws.sleeps), "
                + "wake-ups sent \(ws.wakeupsSent), foreign wake-ups \(ws.foreignWakeups), "
                + "handled \(lanes.reduce(0) { $0 + $1.handled }); pending \(pending)"
        }.joined(separator: "\n")
    }

    /// The kernel thread id of a worker (for `/proc` accounting).
    public func threadID(of worker: WorkerID) -> Int32 { sp_engine_worker_tid(handle, UInt32(worker.rawValue)) }

    /// Bytes of ring memory allocated so far.
    public var ringBytes: Int { Int(sp_engine_ring_bytes(handle)) }

    /// `io_uring` or `epoll`.
    public var backend: Configuration.Backend {
        sp_engine_backend(handle) == SP_BACKEND_IO_URING.rawValue ? .ioUring : .epoll
    }
}

/// Makes shutdown idempotent: the first call's report is kept.
final class ShutdownState: Sendable {
    private let report = Locked<ShutdownReport?>(nil)
    func once(_ body: () -> ShutdownReport) -> ShutdownReport {
        report.withLock { saved in
            if let r = saved { return r }
            let r = body()
            saved = r
            return r
        }
    }
}
