import CSpindle

// The manual engine behind SpindleTesting, as SPI (`@_spi(Testing) import Spindle`): the real C
// core — workers, lanes, rings, scheduler — with no thread, driven round by round from the
// caller's thread, its timers on a clock the caller moves (CSupport/manual.c). Users meet it as
// SpindleTesting's `TestEngine`; nothing here is on a real engine's path.

extension Engine.Builder {
    /// Starts a manual engine from this builder: the same handler table, per-worker state and
    /// timers, no thread. The configuration is validated without host rules; I/O sources other
    /// than timers are refused.
    @_spi(Testing)
    public func _startManual() throws(SpindleError) -> Engine {
        if let io = sources.first(where: { $0.spec.kind != SP_SOURCE_TIMER.rawValue }) {
            throw SpindleError(
                .invalidConfiguration,
                "\(io.handle.label): a test engine runs timers only (fd watches, signals, TCP and UDP need a real engine); fix: post its events to the handler as ordinary events, or test it on a real engine"
            )
        }
        try configuration.validate(host: false)
        var raw = try configuration.cValue()
        let core = EngineCore(
            entries: entries, factories: factories, errorHook: errorHook,
            laneNames: configuration.lanes.map(\.name), sources: sources)
        var cb = core.callbacks
        var err: Int32 = 0
        var msg = [CChar](repeating: 0, count: 512)
        guard let handle = sp_engine_start_manual(&raw, &cb, 0, &err, &msg, msg.count) else {
            throw SpindleError(.startFailed, String(cMessage: msg))
        }
        if let failed = sources.first(where: { $0.handle.armError.withLock { $0 } != nil }) {
            sp_engine_shutdown(handle, sp_now_ns())
            sp_engine_destroy(handle)
            throw SpindleError(
                .startFailed,
                "\(failed.handle.label) on worker \(failed.handle.worker.rawValue): \(failed.handle.armError.withLock { $0 } ?? "")"
            )
        }
        let engine = Engine(handle: handle, core: core, configuration: configuration, builderID: builderID)
        for s in sources { s.handle.attach(engine) }
        return engine
    }
}

extension Engine {
    /// True for an engine made by ``Engine/Builder/_startManual()``.
    @_spi(Testing)
    public var _isManual: Bool { sp_engine_backend(handle) == SP_BACKEND_MANUAL.rawValue }

    /// One scheduler round of `worker` on the calling thread (`sp_manual_round`): events handled,
    /// and timer events that entered a lane after it. Traps when called from one of this engine's
    /// handlers or on an engine that is not manual; does nothing after shutdown.
    @_spi(Testing)
    public func _manualRound(worker: Int) -> (handled: Int, delivered: Int) {
        precondition(_isManual, "a round can be run by hand only on a test engine")
        precondition(worker >= 0 && worker < workerCount, "worker \(worker): the engine has \(workerCount) workers")
        var handled: UInt32 = 0
        var delivered: UInt32 = 0
        let rc = sp_manual_round(handle, UInt32(worker), &handled, &delivered)
        precondition(
            rc != SP_EWORKER_THREAD.rawValue, "a test engine cannot be run from inside one of its own handlers")
        return (Int(handled), Int(delivered))
    }

    /// The manual engine's clock, in nanoseconds (timer deadlines are on it).
    @_spi(Testing)
    public var _manualNow: UInt64 {
        guard let w = sp_manual_worker(handle, 0) else { return 0 }
        return sp_worker_now_ns(w)
    }

    /// Moves the manual engine's clock forward to `nanoseconds` (never back).
    @_spi(Testing)
    public func _setManualNow(_ nanoseconds: UInt64) { sp_manual_set_now(handle, nanoseconds) }

    /// The earliest deadline of a timer armed on any worker, or nil.
    @_spi(Testing)
    public var _manualNextDeadline: UInt64? {
        let d = sp_manual_next_deadline(handle)
        return d == .max ? nil : d
    }

    /// The events pending in (`worker`, `lane`), in ring order source by source: each one's
    /// handler kind index and the kind's name (the event type, or a source's label).
    @_spi(Testing)
    public func _pendingKinds(worker: Int, lane: Int) -> [(kind: UInt32, name: String)] {
        _pendingSlots(worker: worker, lane: lane).map { ($0.kind, _kindName($0.kind)) }
    }

    /// The pending events of one kind in (`worker`, `lane`), decoded, in ring order source by
    /// source. A boxed event is read from its box (still owned by the ring).
    @_spi(Testing)
    public func _pendingEvents<E>(_ kind: EventKind<E>, worker: Int, lane: Int) -> [E] {
        _check(kind)
        return _pendingSlots(worker: worker, lane: lane).filter { $0.kind == kind.index }.map { slot in
            withUnsafePointer(to: slot) { p in
                let raw = UnsafeRawPointer(p)
                if slot.flags & SP_SLOT_BOXED != 0 {
                    let box = raw.load(fromByteOffset: 16, as: UnsafeMutableRawPointer.self)
                    return Unmanaged<EventBox<E>>.fromOpaque(box).takeUnretainedValue().value
                }
                // Inline: registration checked E is an InlineEvent of at most 48 bytes.
                return _loadInline(raw + 16, as: E.self)
            }
        }
    }

    private func _loadInline<E>(_ raw: UnsafeRawPointer, as type: E.Type) -> E {
        let copy = UnsafeMutableRawPointer.allocate(
            byteCount: MemoryLayout<E>.size, alignment: MemoryLayout<E>.alignment)
        defer { copy.deallocate() }
        copy.copyMemory(from: raw, byteCount: MemoryLayout<E>.size)
        return copy.load(as: E.self)
    }

    private func _pendingSlots(worker: Int, lane: Int) -> [sp_slot] {
        precondition(_isManual, "lanes can be read slot by slot only on a test engine")
        guard worker >= 0 && worker < workerCount && lane >= 0 && lane < configuration.lanes.count else { return [] }
        let n = Int(sp_manual_lane_slots(handle, UInt32(worker), UInt32(lane), nil, 0))
        guard n > 0 else { return [] }
        return [sp_slot](unsafeUninitializedCapacity: n) { buf, count in
            count = Int(sp_manual_lane_slots(handle, UInt32(worker), UInt32(lane), buf.baseAddress, UInt32(n)))
            count = min(count, n)
        }
    }

    /// The name of handler kind `index`: the event type, or a source's label.
    @_spi(Testing)
    public func _kindName(_ index: UInt32) -> String {
        Int(index) < core.entries.count ? core.entries[Int(index)].typeName : "kind \(index)"
    }

    /// Runs `body` with `worker`'s copy of a per-worker state, between rounds.
    @_spi(Testing)
    public func _withState<State, R>(_ state: CoreLocal<State>, worker: Int, _ body: (inout State) throws -> R) rethrows
        -> R
    {
        precondition(_isManual, "per-worker state can be read from outside only on a test engine")
        precondition(
            state.index < core.factories.count && core.factories[state.index].stateType == ObjectIdentifier(State.self),
            "CoreLocal<\(State.self)> was made by another builder")
        guard let w = sp_manual_worker(handle, UInt32(worker)), let raw = sp_worker_userdata(w) else {
            preconditionFailure("worker \(worker): the engine has \(workerCount) workers (or it has shut down)")
        }
        let local = raw.assumingMemoryBound(to: WorkerLocal.self)
        return try body(&local.pointee.states[state.index].assumingMemoryBound(to: State.self).pointee)
    }
}
