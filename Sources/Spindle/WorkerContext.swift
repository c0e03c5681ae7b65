import CSpindle

/// What a handler knows about where it runs, and how it posts from there.
///
/// Passed `borrowing` and `~Copyable`, and not `Sendable`: it cannot leave the handler or cross
/// threads. Posting through it takes the fastest paths: ``post(_:as:lane:to:)-2oqwg`` without a destination
/// goes to this worker's own queue (a plain per-thread queue, no atomics); with a destination it
/// uses this worker's SPSC ring to that worker.
public struct WorkerContext: ~Copyable {
    @usableFromInline let _worker: OpaquePointer
    @usableFromInline let _local: UnsafeMutablePointer<WorkerLocal>
    /// The lane whose batch is being handled.
    public let lane: Lane
    /// A weighted lane's batch may stop between two events when a strict lane has work.
    @usableFromInline let _preemptible: Bool

    @usableFromInline
    init(worker: OpaquePointer, local: UnsafeMutablePointer<WorkerLocal>, lane: Lane, preemptible: Bool) {
        self._worker = worker
        self._local = local
        self.lane = lane
        self._preemptible = preemptible
    }

    /// True when this batch should end after the current event: it is a weighted lane's and a
    /// strict lane of this worker has just received work. One relaxed load.
    @inlinable
    var _shouldYield: Bool { _preemptible && sp_worker_urgent(_worker) != 0 }

    /// This worker's id.
    @inlinable public var worker: WorkerID { WorkerID(_local.pointee.id) }
    /// The CPU this worker is pinned to.
    @inlinable public var cpu: Int { _local.pointee.cpu }

    @inlinable
    func _state(_ index: Int) -> UnsafeMutableRawPointer { _local.pointee.states[index] }

    @usableFromInline
    func _report(_ error: any Error) {
        _local.pointee.core._withUnsafeGuaranteedRef { $0.report(error, worker: _local.pointee.id, lane: lane) }
    }

    @inlinable
    func _result(_ rc: Int32, _ dest: UInt32, _ lane: Lane) throws(PostError) -> PostResult {
        if rc == SP_OK.rawValue { return .enqueued }
        if rc == SP_EDROPPED.rawValue { return .dropped }
        let w = dest == SP_DEST_SELF ? _local.pointee.id : Int(dest)
        throw PostError(PostError.code(for: rc), worker: WorkerID(w), lane: lane)
    }

    /// Posts an inline event to this worker's own queue (no atomics), or to `destination`
    /// through this worker's SPSC rings.
    /// - Throws: ``PostError`` when the lane is full (`reject`, or `block`: a worker never waits).
    @inlinable @discardableResult
    public func post<E: InlineEvent>(_ event: E, as kind: EventKind<E>, lane: Lane, to destination: Destination? = nil)
        throws(PostError) -> PostResult
    {
        let dest = destination?.raw(workerCount: _local.pointee.workerCount) ?? SP_DEST_SELF
        var e = event
        let rc = withUnsafeBytes(of: &e) {
            sp_worker_post_fast(_worker, dest, UInt32(truncatingIfNeeded: lane.index), kind.index, 0, $0.baseAddress,
                           UInt32(MemoryLayout<E>.size))
        }
        return try _result(rc, dest, lane)
    }

    /// Publishes now the cross-core posts this handler made that the engine would otherwise
    /// publish when the batch ends (it batches them: every 32 events, or at the batch's end). Call
    /// it before waiting inside a handler for another worker to react — which handlers, being
    /// cooperative, should rarely do. Posts to strict lanes and to sleeping workers need no flush.
    @inlinable
    public func flush() { sp_worker_flush_now(_worker) }

    /// Posts many inline events from a handler to this worker's own queue or to `destination`:
    /// all or nothing, one publish.
    /// - Throws: ``PostError`` (`laneFull` when the ring lacks room for all, `batchTooLarge`).
    @inlinable @discardableResult
    public func post<E: InlineEvent>(contentsOf events: UnsafeBufferPointer<E>, as kind: EventKind<E>, lane: Lane,
                                     to destination: Destination? = nil) throws(PostError) -> PostResult
    {
        let dest = destination?.raw(workerCount: _local.pointee.workerCount) ?? SP_DEST_SELF
        let rc = sp_worker_post_batch(_worker, dest, UInt32(truncatingIfNeeded: lane.index), kind.index, 0,
                                      UnsafeRawPointer(events.baseAddress), MemoryLayout<E>.stride,
                                      UInt32(MemoryLayout<E>.size), UInt32(truncatingIfNeeded: events.count))
        return try _result(rc, dest, lane)
    }

    /// ``post(contentsOf:as:lane:to:)-(UnsafeBufferPointer<E>,_,_,_)`` for an array.
    @inlinable @discardableResult
    public func post<E: InlineEvent>(contentsOf events: [E], as kind: EventKind<E>, lane: Lane,
                                     to destination: Destination? = nil) throws(PostError) -> PostResult
    {
        try events.withUnsafeBufferPointer { (buf) throws(PostError) in
            try post(contentsOf: buf, as: kind, lane: lane, to: destination)
        }
    }

    /// Posts a boxed event (one allocation); the box is released exactly once.
    @inlinable @discardableResult
    public func post<E: Event>(_ event: E, as kind: EventKind<E>, lane: Lane, to destination: Destination? = nil)
        throws(PostError) -> PostResult
    {
        let dest = destination?.raw(workerCount: _local.pointee.workerCount) ?? SP_DEST_SELF
        var box: UnsafeMutableRawPointer? = Unmanaged.passRetained(EventBox(event)).toOpaque()
        let rc = withUnsafeBytes(of: &box) {
            sp_worker_post(_worker, dest, UInt32(truncatingIfNeeded: lane.index), kind.index, SP_SLOT_BOXED,
                           $0.baseAddress, UInt32(MemoryLayout<UnsafeMutableRawPointer>.size))
        }
        if rc != SP_OK.rawValue { Unmanaged<EventBox<E>>.fromOpaque(box!).release() }
        return try _result(rc, dest, lane)
    }
}

@available(*, unavailable, message: "a WorkerContext belongs to the handler call it was passed to")
extension WorkerContext: Sendable {}
