import CSpindle
import Foundation

extension Engine.Builder {
    /// A timer that fires once, `delay` after the engine starts, on the worker `destination`
    /// names; its event enters `lane` there.
    ///
    /// ```swift
    /// let timeout = try builder.timer(after: .milliseconds(5), lane: critical) { t, ctx in
    ///     print("fired \(t.lateness) late")
    /// }
    /// ```
    /// - Throws: ``SpindleError`` for a lane the configuration does not have.
    @discardableResult
    public mutating func timer(
        after delay: Duration, lane: Lane, on destination: Destination = .worker(WorkerID(0)),
        handler: @escaping @Sendable (TimerEvent, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> SourceHandle {
        try _timer(first: delay, every: nil, lane: lane, on: destination, handler: handler)
    }

    /// A periodic timer: first after `period`, then every `period` on an absolute schedule (it
    /// never drifts). A worker that falls behind gets one event with ``TimerEvent/coalesced`` firings
    /// folded in, never a burst and never silence.
    /// - Throws: ``SpindleError`` for a period under 1 µs or an unknown lane.
    @discardableResult
    public mutating func timer(
        every period: Duration, lane: Lane, on destination: Destination = .worker(WorkerID(0)),
        handler: @escaping @Sendable (TimerEvent, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> SourceHandle {
        try _timer(first: period, every: period, lane: lane, on: destination, handler: handler)
    }

    mutating func _timer(
        first: Duration, every: Duration?, lane: Lane, on destination: Destination,
        handler: @escaping @Sendable (TimerEvent, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> SourceHandle {
        let firstNS = first._clampedNanoseconds, periodNS = every.map(\._clampedNanoseconds) ?? 0
        if every != nil && periodNS < 1000 {
            throw SpindleError(.invalidConfiguration, "timer period \(every!): rule at least 1 µs; fix: use a longer period")
        }
        var spec = sp_source_spec()
        spec.kind = SP_SOURCE_TIMER.rawValue
        spec.first_ns = firstNS  // relative here; made absolute when the worker arms it
        spec.interval_ns = periodNS
        let label = every.map { "timer every \($0)" } ?? "timer after \(first)"
        return try _source(spec, lane: lane, on: destination, label: label, TimerEvent.init, handler)
    }

    /// Watches a file descriptor the engine does not own (a pipe, an inotify fd, …): one event per
    /// change of readiness, on the worker `destination` names, in `lane`. Keep the fd open until
    /// the watch's final event (cancel it first, then close).
    /// - Throws: ``SpindleError`` for an empty event set or an unknown lane.
    @discardableResult
    public mutating func watch(
        fd: Int32, for events: PollEvents = .readable, lane: Lane, on destination: Destination = .worker(WorkerID(0)),
        handler: @escaping @Sendable (Readiness, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> SourceHandle {
        let spec = try sp_source_spec._fdWatch(fd, events)
        return try _source(spec, lane: lane, on: destination, label: "fd \(fd)", Readiness.init, handler)
    }

    /// Turns signals into events in `lane` (`SIGTERM` → a lane event, so shutdown is just another
    /// event). Each signal has one owner in the process: the engine installs its own handler and
    /// refuses, at start, a signal that already has a handler or is ignored — which is how
    /// `DispatchSource` signal sources (and swift-service-lifecycle's `ServiceGroup`) hold theirs.
    /// Do not give one signal to both. The default disposition is restored at shutdown.
    @discardableResult
    public mutating func signals(
        _ signals: Set<Signal>, lane: Lane, on destination: Destination = .worker(WorkerID(0)),
        handler: @escaping @Sendable (SignalEvent, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> SourceHandle {
        var mask: UInt64 = 0
        for s in signals {
            guard (1...64).contains(s.rawValue), s.rawValue != SIGKILL, s.rawValue != SIGSTOP else {
                throw SpindleError(.invalidConfiguration, "\(s) cannot be handled; fix: remove it from the set")
            }
            mask |= 1 << UInt64(s.rawValue - 1)
        }
        guard mask != 0 else { throw SpindleError(.invalidConfiguration, "signals: an empty set; fix: name at least one signal") }
        var spec = sp_source_spec()
        spec.kind = SP_SOURCE_SIGNALS.rawValue
        spec.signals = mask
        let names = signals.map(\.description).sorted().joined(separator: ", ")
        return try _source(spec, lane: lane, on: destination, label: "signals \(names)", SignalEvent.init, handler)
    }

    /// The worker(s) a source registered for `destination` lives on, after checking its lane:
    /// `.worker` that one, `.key` the mixer's pick, `.spread` the next in turn — or, for a listener
    /// (`everyWorker`), one on each worker.
    func _sourceWorkers(lane: Lane, on destination: Destination, what: String, everyWorker: Bool = false)
        throws(SpindleError) -> [Int]
    {
        guard lane.index >= 0 && lane.index < configuration.lanes.count else {
            throw SpindleError(.unknownLane, "lane \(lane.index): this configuration has \(configuration.lanes.count) lanes")
        }
        let n = configuration.cpus.count
        switch destination {
        case .worker(let w):
            guard w.rawValue >= 0 && w.rawValue < n else {
                throw SpindleError(.invalidConfiguration, "\(what) on worker \(w.rawValue): the configuration has \(n) workers")
            }
            return [w.rawValue]
        case .key(let k): return [Int(sp_key_worker(k, UInt32(n)))]
        case .spread: return everyWorker ? Array(0..<n) : [sources.count % n]
        }
    }

    /// Registers the source's handler kind and queues the source for its worker.
    mutating func _source<Ev>(
        _ spec: sp_source_spec, lane: Lane, on destination: Destination, label: String,
        _ convert: @escaping @Sendable (sp_io_event) -> Ev,
        _ handler: @escaping @Sendable (Ev, borrowing WorkerContext) throws -> Void
    ) throws(SpindleError) -> SourceHandle {
        let worker = try _sourceWorkers(lane: lane, on: destination, what: label)[0]
        let handle = SourceHandle(worker: WorkerID(worker), label: label)
        let run: HandlerEntry.Run = { slots, count, ctx in
            _runBatch(count, ctx) { i throws in
                let e = UnsafeRawPointer(slots + i).load(fromByteOffset: 16, as: sp_io_event.self)
                if e.flags & SP_IO_STALE != 0 { return }  // queued before cancel(): not handed over
                // Finished once its final event was handed over (after the handler, so a waiter
                // that sees `isFinished` also sees what the handler did).
                defer { if e.flags & SP_IO_FINAL != 0 { handle.finished.store(true, ordering: .releasing) } }
                try handler(convert(e), ctx)
            }
        }
        let kind: EventKind<_IOSlot> = try _append(HandlerEntry(run: run, release: nil, typeName: label), inline: true)
        var s = spec
        s.lane = UInt32(lane.index)
        s.handler_kind = kind.index
        sources.append(PendingSource(handle: handle, spec: s))
        return handle
    }
}

/// The slot type of a source's events (an ``sp_io_event``); never posted by users.
struct _IOSlot: InlineEvent {}

extension Duration {
    /// Whole nanoseconds, clamped to 0...UInt64.max (also the test engine's clock step).
    package var _clampedNanoseconds: UInt64 {
        let (s, a) = components
        if s < 0 { return 0 }
        let (ns, over) = UInt64(s).multipliedReportingOverflow(by: 1_000_000_000)
        return over ? .max : ns &+ UInt64(a / 1_000_000_000)
    }
}

extension sp_source_spec {
    /// The spec of an fd watch (the builder's and a handler's), or the one-line refusal.
    static func _fdWatch(_ fd: Int32, _ events: PollEvents, tag: UInt64 = 0) throws(SpindleError) -> sp_source_spec {
        guard fd >= 0, !events.intersection([.readable, .writable, .priority]).isEmpty else {
            throw SpindleError(.invalidConfiguration, "watch fd \(fd) for \(events.rawValue): rule an open fd and at least one of readable, writable, priority")
        }
        var spec = sp_source_spec()
        spec.kind = SP_SOURCE_FD.rawValue
        spec.fd = fd
        spec.events = events.rawValue
        spec.tag = tag
        return spec
    }
}
