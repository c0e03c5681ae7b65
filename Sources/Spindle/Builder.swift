import CSpindle
import Logging
import Synchronization

extension Engine {
    /// Collects lanes, per-worker state and handlers, then starts the engine. `start()` copies the
    /// handler table into the engine, where it is immutable; registering on the builder afterwards
    /// changes only the builder (a later `start()` makes a new engine with the new table).
    ///
    /// ```swift
    /// var builder = Engine.Builder()                       // the embedded default for this host
    /// let bulk = try builder.lane(named: "bulk")
    /// let counts = builder.coreLocal { _ in 0 }            // one Int per worker
    /// let ticks = try builder.register(Tick.self, using: counts) { tick, count, ctx in count += 1 }
    /// let engine = try builder.start()
    /// try engine.post(Tick(id: 1), as: ticks, lane: bulk, to: .spread)
    /// ```
    ///
    /// **Logging.** Pass the application's `Logger` (swift-log) to the initializer; without one
    /// the engine logs nothing. `start()` logs one `info` line of start-up facts (backend, workers,
    /// CPUs, lanes, ring memory), a `debug` line per worker (`spindle.worker`, its CPU and thread),
    /// and a `warning` once per start for a problem it works around (io_uring denied: epoll; no
    /// multishot poll). Workers never log: nothing is logged per event or per batch.
    public struct Builder {
        /// The configuration the engine will start with.
        public let configuration: Configuration
        @usableFromInline var entries: [HandlerEntry] = []
        var factories: [StateFactory] = []
        var sources: [PendingSource] = []
        var errorHook: (@Sendable (any Error, WorkerID, Lane) -> Void)?
        var stopHooks: [@Sendable () -> Void] = []
        var stallHook: (@Sendable (SlowHandlerReport) -> Void)?
        @usableFromInline let builderID: UInt64
        var logger: Logger
        let usingDefault: Bool

        /// A builder for `configuration`.
        /// - Parameters:
        ///   - configuration: workers, lanes and their policies (from a profile, or built in code).
        ///   - logger: where the engine logs its start (see ``Engine/Builder`` on logging);
        ///   by default nothing is logged: a library never sets up logging for its application.
        public init(
            configuration: Configuration,
            logger: Logger = Logger(label: "spindle", factory: { _ in SwiftLogNoOpLogHandler() })
        ) {
            self.configuration = configuration
            self.builderID = Builder.nextID()
            self.logger = logger
            self.usingDefault = false
        }

        /// A builder on the embedded default for this host (``Configuration/hostDefault``); the
        /// engine's start-up line says so (`spindle.profile: embedded default`).
        /// - Parameter logger: where the engine logs its start; by default nothing is logged.
        public init(logger: Logger = Logger(label: "spindle", factory: { _ in SwiftLogNoOpLogHandler() })) {
            self.configuration = .hostDefault
            self.builderID = Builder.nextID()
            self.logger = logger
            self.usingDefault = true
        }

        private static let counter = IDCounter()
        private static func nextID() -> UInt64 { counter.next() }

        /// The lane called `name` in the configuration.
        /// - Throws: ``SpindleError/Code/unknownLane`` listing the names there are.
        public func lane(named name: String) throws(SpindleError) -> Lane {
            guard let i = configuration.lanes.firstIndex(where: { $0.name == name }) else {
                let names = configuration.lanes.map(\.name).joined(separator: ", ")
                throw SpindleError(.unknownLane, "no lane named \"\(name)\"; this configuration has: \(names)")
            }
            return Lane(index: i)
        }

        /// Per-worker state: `make` runs once on each worker's thread at start (so the state lives
        /// on that worker's NUMA node); handlers registered `using:` it get that worker's copy
        /// `inout`. Destroyed on the worker's thread at shutdown.
        public mutating func coreLocal<State>(_ make: @escaping @Sendable (WorkerID) -> State) -> CoreLocal<State> {
            factories.append(StateFactory(
                make: { id in
                    let p = UnsafeMutablePointer<State>.allocate(capacity: 1)
                    p.initialize(to: make(id))
                    return UnsafeMutableRawPointer(p)
                },
                destroy: { raw in
                    let p = raw.assumingMemoryBound(to: State.self)
                    p.deinitialize(count: 1)
                    p.deallocate()
                }, stateType: ObjectIdentifier(State.self)))
            return CoreLocal(index: factories.count - 1)
        }

        /// Called (on the worker's thread) when a handler throws; the engine counts it as `failed`
        /// and goes on.
        public mutating func onError(_ hook: @escaping @Sendable (any Error, WorkerID, Lane) -> Void) {
            errorHook = hook
        }

        @usableFromInline
        mutating func _append<E>(_ entry: HandlerEntry, inline: Bool) throws(SpindleError) -> EventKind<E> {
            guard entries.count < Int(UInt32.max) else { throw SpindleError(.invalidConfiguration, "too many handlers") }
            entries.append(entry)
            return EventKind(index: UInt32(entries.count - 1), isInline: inline, builderID: builderID)
        }

        @usableFromInline
        static func _checkInline<E: InlineEvent>(_ type: E.Type) throws(SpindleError) {
            guard MemoryLayout<E>.size <= Int(SP_INLINE_MAX), MemoryLayout<E>.alignment <= Int(SP_INLINE_ALIGN) else {
                throw SpindleError(.eventTooLarge,
                    "\(E.self) is \(MemoryLayout<E>.size) bytes aligned to \(MemoryLayout<E>.alignment): an InlineEvent must be at most \(SP_INLINE_MAX) bytes and aligned to at most \(SP_INLINE_ALIGN); fix: make it smaller, or drop InlineEvent to have it boxed")
            }
        }

        /// Starts the engine: validates the configuration (host rules too), then starts one worker
        /// per configured CPU; returns once every worker has pinned itself and set up its io_uring
        /// (so failures surface here) and built its per-worker state.
        /// - Throws: ``SpindleError`` (`invalidConfiguration`, `startFailed`).
        public func start() throws(SpindleError) -> Engine {
            try configuration.validate(host: true)
            var raw = try configuration.cValue()
            // Executor jobs are one more inline kind, the last in the table (``WorkerExecutor``).
            let jobs = ExecutorTable(workerCount: configuration.cpus.count, laneCount: configuration.lanes.count,
                                     kind: UInt32(entries.count))
            let core = EngineCore(entries: entries + [jobs.handlerEntry()], factories: factories, errorHook: errorHook,
                                  laneNames: configuration.lanes.map(\.name), sources: sources, jobs: jobs,
                                  stopHooks: stopHooks,
                                  stallHook: stallHook ?? { [logger] report in logger.warning("spindle: \(report)") })
            var cb = core.callbacks
            var err: Int32 = 0
            var msg = [CChar](repeating: 0, count: 512)
            guard let handle = sp_engine_start(&raw, &cb, &err, &msg, msg.count) else {
                throw SpindleError(.startFailed, String(cMessage: msg))
            }
            // Sources were armed by their workers during start; one that failed fails the start.
            if let failed = sources.first(where: { $0.handle.armError.withLock { $0 } != nil }) {
                sp_engine_shutdown(handle, sp_now_ns())
                core.afterShutdown()
                sp_engine_destroy(handle)
                throw SpindleError(.startFailed, "\(failed.handle.label) on worker \(failed.handle.worker.rawValue): \(failed.handle.armError.withLock { $0 } ?? "")")
            }
            jobs.install(handle: handle)
            _logStart(handle)
            let engine = Engine(handle: handle, core: core, configuration: configuration, builderID: builderID)
            for s in sources { s.handle.attach(engine) }
            return engine
        }
    }
}

/// Distinguishes builders so a token from one engine cannot be posted to another.
final class IDCounter: Sendable {
    private let value = Atomic<UInt64>(0)
    func next() -> UInt64 { value.add(1, ordering: .relaxed).newValue }
}

extension String {
    /// A NUL-terminated C message buffer as a String.
    init(cMessage buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
