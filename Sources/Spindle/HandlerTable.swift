import CSpindle

/// One registered handler, type-erased. `run` is built inside the generic `register` call (so it
/// is specialized for the event and state types in the caller's module) and called once per run
/// of same-kind events in a batch; the table holding these entries is immutable once the engine
/// has started, and the trampoline borrows it, so no retain or release happens per event.
@usableFromInline
final class HandlerEntry: Sendable {
    /// Handles up to `count` consecutive slots of one kind; returns `(handled << 32) | failed`.
    /// A weighted lane's run stops early when a strict lane has work (``WorkerContext/_shouldYield``).
    @usableFromInline
    typealias Run = @Sendable (UnsafePointer<sp_slot>, Int, borrowing WorkerContext) -> UInt64
    /// Releases a boxed payload that was never handled (shutdown).
    @usableFromInline
    typealias Release = @Sendable (UnsafePointer<sp_slot>) -> Void

    @usableFromInline let run: Run
    @usableFromInline let release: Release?
    @usableFromInline let typeName: String

    @usableFromInline
    init(run: @escaping Run, release: Release?, typeName: String) {
        self.run = run
        self.release = release
        self.typeName = typeName
    }
}

/// Per-worker data the trampoline finds through `sp_worker_userdata`: built on the worker's own
/// thread (first touch puts it on the worker's NUMA node).
@usableFromInline
struct WorkerLocal {
    @usableFromInline var id: Int
    @usableFromInline var cpu: Int
    /// One pointer per `coreLocal` state.
    @usableFromInline var states: UnsafeMutablePointer<UnsafeMutableRawPointer>
    @usableFromInline var core: Unmanaged<EngineCore>
    /// The engine's worker count (resolves destinations without a C call).
    @usableFromInline var workerCount: UInt32
}

/// A per-worker state factory and its destructor, type-erased.
struct StateFactory: Sendable {
    let make: @Sendable (WorkerID) -> UnsafeMutableRawPointer
    let destroy: @Sendable (UnsafeMutableRawPointer) -> Void
    /// `State`, so a reader of the state (SpindleTesting's `withState`) can check the type.
    var stateType: ObjectIdentifier? = nil
}

/// Everything the C core calls back into: the immutable handler table, the state factories, the
/// error hook. Passed to C as an unretained opaque pointer; ``Engine`` keeps it alive.
@usableFromInline
final class EngineCore: @unchecked Sendable {
    /// Immutable after init: `handlers[i]` is the entry for kind `i`.
    let handlers: UnsafeMutablePointer<Unmanaged<HandlerEntry>>
    let handlerCount: Int
    let entries: [HandlerEntry]
    let factories: [StateFactory]
    let errorHook: (@Sendable (any Error, WorkerID, Lane) -> Void)?
    let laneNames: [String]
    let sources: [PendingSource]
    /// The executors' jobs, overflow lists and fallbacks (``WorkerExecutor``).
    let jobs: ExecutorTable?
    /// Run once the workers have exited (event streams finish).
    let stopHooks: [@Sendable () -> Void]
    /// Where the watchdog's reports go (``Engine/Builder/onSlowHandler(_:)``); nil: no watchdog.
    let stallHook: (@Sendable (SlowHandlerReport) -> Void)?
    init(entries: [HandlerEntry], factories: [StateFactory], errorHook: (@Sendable (any Error, WorkerID, Lane) -> Void)?,
         laneNames: [String], sources: [PendingSource] = [], jobs: ExecutorTable? = nil,
         stopHooks: [@Sendable () -> Void] = [], stallHook: (@Sendable (SlowHandlerReport) -> Void)? = nil) {
        self.sources = sources
        self.jobs = jobs
        self.stopHooks = stopHooks
        self.stallHook = stallHook
        self.entries = entries
        self.handlerCount = entries.count
        self.handlers = .allocate(capacity: max(1, entries.count))
        for (i, e) in entries.enumerated() { (handlers + i).initialize(to: Unmanaged.passUnretained(e)) }
        self.factories = factories
        self.errorHook = errorHook
        self.laneNames = laneNames
    }

    deinit { handlers.deallocate() }

    /// One batch: group consecutive slots by kind, one call per group.
    @inline(__always)
    func dispatch(_ worker: OpaquePointer, _ lane: UInt32, _ slots: UnsafePointer<sp_slot>, _ count: Int) -> UInt64 {
        let local = sp_worker_userdata(worker)!.assumingMemoryBound(to: WorkerLocal.self)
        let ctx = WorkerContext(worker: worker, local: local, lane: Lane(index: Int(lane & 0x7FFF_FFFF)),
                                preemptible: lane & SP_DISPATCH_PREEMPTIBLE != 0)
        // Executor jobs that found their lane full run when a batch ends (one load per batch).
        defer { jobs?.afterBatch(worker: local.pointee.id) }
        var failed: UInt64 = 0
        var i = 0
        while i < count {
            let kind = slots[i].kind
            var j = i &+ 1
            while j < count && slots[j].kind == kind { j &+= 1 }
            let r = handlers[Int(kind)]._withUnsafeGuaranteedRef { $0.run(slots + i, j &- i, ctx) }
            failed &+= r & 0xFFFF_FFFF
            let done = Int(truncatingIfNeeded: r >> 32)
            if done < j &- i { return UInt64(i &+ done) << 32 | failed }  // cut short for a strict lane
            i = j
            if i < count && ctx._shouldYield { break }
        }
        return UInt64(i) << 32 | failed
    }

    func workerStarted(_ worker: OpaquePointer, _ id: Int) {
        let states = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: max(1, factories.count))
        for (i, f) in factories.enumerated() { (states + i).initialize(to: f.make(WorkerID(id))) }
        let local = UnsafeMutablePointer<WorkerLocal>.allocate(capacity: 1)
        local.initialize(to: WorkerLocal(id: id, cpu: Int(sp_worker_cpu(worker)), states: states,
                                         core: .passUnretained(self),
                                         workerCount: sp_engine_worker_count(sp_worker_engine(worker))))
        sp_worker_set_userdata(worker, local)
        armSources(worker, id)
    }

    /// Arms this worker's sources on its own thread (it owns the ring). A failure is kept in the
    /// handle; the builder fails the start with it.
    func armSources(_ worker: OpaquePointer, _ id: Int) {
        for s in sources where s.handle.worker.rawValue == id {
            var spec = s.spec
            if spec.kind == SP_SOURCE_TIMER.rawValue { spec.first_ns &+= sp_worker_now_ns(worker) }  // relative → absolute (the engine's clock)
            var sid: UInt64 = 0
            var msg = [CChar](repeating: 0, count: 256)
            let rc = s.address.withUnsafeBytes { addr in
                spec.addr = addr.baseAddress
                spec.addr_len = UInt32(addr.count)
                defer { spec.addr = nil }
                return sp_worker_add_source(worker, &spec, &sid, &msg, msg.count)
            }
            if rc == SP_OK.rawValue {
                if spec.kind == SP_SOURCE_LISTEN.rawValue || spec.kind == SP_SOURCE_UDP.rawValue { s.handle.port.store(Int(sp_source_local_port(worker, sid)), ordering: .releasing) }
                s.handle.id.store(sid, ordering: .releasing)
                s.handle.enginePointer.store(UInt(bitPattern: sp_worker_engine(worker)), ordering: .releasing)
            } else {
                s.handle.armError.withLock { $0 = String(cMessage: msg) }
            }
        }
    }

    func workerStopping(_ worker: OpaquePointer) {
        guard let raw = sp_worker_userdata(worker) else { return }
        let local = raw.assumingMemoryBound(to: WorkerLocal.self)
        for (i, f) in factories.enumerated() { f.destroy(local.pointee.states[i]) }
        local.pointee.states.deallocate()
        local.deinitialize(count: 1)
        local.deallocate()
        sp_worker_set_userdata(worker, nil)
    }

    func release(_ slot: UnsafePointer<sp_slot>) {
        let kind = Int(slot.pointee.kind)
        guard kind < handlerCount else { return }
        entries[kind].release?(slot)
    }

    /// After the workers have exited (shutdown, before the C engine is freed): later executor jobs
    /// run on the fallbacks, event streams finish.
    func afterShutdown() {
        jobs?.engineStopped()
        for hook in stopHooks { hook() }
    }

    func report(_ error: any Error, worker: Int, lane: Lane) {
        errorHook?(error, WorkerID(worker), lane)
    }

    var callbacks: sp_callbacks {
        var cb = sp_callbacks()
        cb.context = Unmanaged.passUnretained(self).toOpaque()
        cb.dispatch = { context, worker, lane, slots, count in
            Unmanaged<EngineCore>.fromOpaque(context!)._withUnsafeGuaranteedRef {
                $0.dispatch(worker!, lane, slots!, Int(count))
            }
        }
        cb.worker_started = { context, worker, id in
            Unmanaged<EngineCore>.fromOpaque(context!)._withUnsafeGuaranteedRef { $0.workerStarted(worker!, Int(id)) }
        }
        cb.worker_stopping = { context, worker, _ in
            Unmanaged<EngineCore>.fromOpaque(context!)._withUnsafeGuaranteedRef { $0.workerStopping(worker!) }
        }
        cb.release = { context, slot in
            Unmanaged<EngineCore>.fromOpaque(context!)._withUnsafeGuaranteedRef { $0.release(slot!) }
        }
        if stallHook != nil {
            cb.stalled = { context, worker, lane, kind, count, ns in
                Unmanaged<EngineCore>.fromOpaque(context!)._withUnsafeGuaranteedRef {
                    $0.stalled(worker: Int(worker), lane: Int(lane), kind: Int(kind), count: Int(count), ns: ns)
                }
            }
        }
        return cb
    }
}
