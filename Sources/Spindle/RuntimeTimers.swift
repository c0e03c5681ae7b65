import CSpindle

/// The handler kind of timers that handlers start at run time (``WorkerContext/startTimer(after:every:as:tag:)``),
/// registered on the builder like any handler: its events enter `lane` on the worker that started
/// the timer.
public struct TimerKind: Sendable, Hashable {
    @usableFromInline let index: UInt32
    /// The lane its events enter.
    public let lane: Lane
}

/// A timer a handler started: a value (no allocation) naming it on its worker.
public struct TimerID: Sendable, Hashable {
    /// The worker it lives on (the one that started it).
    public let worker: WorkerID
    @usableFromInline let id: UInt64
}

extension Engine.Builder {
    /// Registers the handler of timers started at run time from handlers on any worker, e.g. a
    /// key-value service's expiries (`SET k v EX 10` → `ctx.startTimer(after: .seconds(10), as: expiry, tag: slot)`).
    /// Each firing carries the timer's ``TimerEvent/tag``.
    /// - Throws: ``SpindleError`` for a lane the configuration does not have.
    public mutating func timers(
        lane: Lane, handler: @escaping @Sendable (TimerEvent, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> TimerKind {
        _ = try _sourceWorkers(lane: lane, on: .worker(WorkerID(0)), what: "timers")  // checks the lane
        let run: HandlerEntry.Run = { slots, count, ctx in
            _runBatch(count, ctx) { i throws in
                let e = UnsafeRawPointer(slots + i).load(fromByteOffset: 16, as: sp_io_event.self)
                if e.flags & SP_IO_STALE != 0 { return }  // queued before cancel: not handed over
                try handler(TimerEvent(e), ctx)
            }
        }
        let kind: EventKind<_IOSlot> = try _append(HandlerEntry(run: run, release: nil, typeName: "timers"), inline: true)
        return TimerKind(index: kind.index, lane: lane)
    }
}

extension WorkerContext {
    /// Starts a timer on this worker (it owns its ring): once after `delay`, or every `period`
    /// after that when given. Its events go to `kind`'s handler in `kind`'s lane, carrying `tag`.
    /// No allocation: the timer is a record in the worker's source table.
    /// - Throws: ``SpindleError`` (`invalidConfiguration` for a period under 1 µs; `startFailed`
    ///   with the reason when the worker's source table is full).
    @discardableResult
    public func startTimer(after delay: Duration, every period: Duration? = nil, as kind: TimerKind, tag: UInt64 = 0)
        throws(SpindleError) -> TimerID
    {
        var spec = sp_source_spec()
        spec.kind = SP_SOURCE_TIMER.rawValue
        spec.lane = UInt32(kind.lane.index)
        spec.handler_kind = kind.index
        spec.first_ns = sp_worker_now_ns(_worker) &+ delay._clampedNanoseconds
        spec.interval_ns = period?._clampedNanoseconds ?? 0
        spec.tag = tag
        if let period, spec.interval_ns < 1000 {
            throw SpindleError(.invalidConfiguration, "timer period \(period): rule at least 1 µs; fix: use a longer period")
        }
        var id: UInt64 = 0
        let rc = sp_worker_add_source(_worker, &spec, &id, nil, 0)
        guard rc == SP_OK.rawValue else {
            throw SpindleError(.startFailed, "timer on worker \(worker.rawValue): \(String(cString: sp_strerror(rc)))")
        }
        return TimerID(worker: worker, id: id)
    }

    /// Cancels a timer this worker started: no event of it is handled after this returns except
    /// exactly one final `cancelled` event. False when it already ended (a one-shot that fired) or
    /// it lives on another worker.
    @discardableResult
    public func cancel(_ timer: TimerID) -> Bool {
        timer.worker == worker && sp_worker_cancel_source(_worker, timer.id) == SP_OK.rawValue
    }
}
