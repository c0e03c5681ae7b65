import Glibc
import Logging
import Spindle
import SpindleRESP
import Synchronization

/// How the key-value server runs: where it listens, on which engine configuration and lanes, and
/// the bounds on what one connection may cost.
public struct KeyValueOptions: Sendable {
    /// Numeric address to listen on.
    public var host = "127.0.0.1"
    /// The data port (0: any free port), served on ``dataLane`` by every worker (`SO_REUSEPORT`).
    public var port = 6380
    /// The control port (0: any free port), served on lane 0 (which must be strict) by worker 0.
    public var controlPort = 6381
    /// The engine configuration (a profile's, or the embedded default).
    public var configuration = Engine.Configuration.hostDefault
    /// The lane of the data port by name; nil: the first weighted lane.
    public var dataLane: String?
    /// Protocol limits (bulk length, arguments, inline length).
    public var limits = RESPLimits()
    /// Bytes of unprocessed input one connection may hold (an unfinished frame, or input kept while
    /// it waits for room); a request that needs more is refused and the connection closed. It also
    /// bounds the largest value that can be SET.
    public var maxInput = 16 << 20
    /// Reply bytes one connection may have unsent; past it the connection is closed (a client that
    /// sends and never reads).
    public var maxOutput = 16 << 20
    /// Replies one connection may owe before its input waits (pipelining depth in flight).
    public var maxPipeline = 1024
    /// Period of the active-expiry sweep on each worker.
    public var sweepInterval: Duration = .milliseconds(100)
    /// Defaults: 127.0.0.1:6380 and :6381, the embedded default configuration.
    public init() {}
}

/// Why the server did not start.
public struct KeyValueError: Error, CustomStringConvertible {
    /// One line.
    public let description: String
}

/// Shared by every worker's shard: the options, the hop kinds, the engine (for INFO).
final class ServerCore: @unchecked Sendable {
    /// Bytes one connection may have handed to the engine's send queue at a time.
    static let inEngineLimit = 256 << 10
    let options: KeyValueOptions
    let workers: Int
    let laneCount: Int
    /// Hops one worker may lend to one owner per lane: a quarter of the lane's ring, shared by the
    /// other workers, so requests and replies on a pair's ring never fill it.
    let hopCap: [Int]
    let laneNames: [String]
    let started = ContinuousClock.now
    // Set before start (registration order), read-only after: the engine's thread start orders it.
    var requestKind: EventKind<HopMessage>!
    var replyKind: EventKind<HopMessage>!
    var shards: [Shard] = []
    let engine = Mutex<Engine?>(nil)
    let dataPort = Atomic<Int>(0)
    let controlPort = Atomic<Int>(0)

    init(options: KeyValueOptions) {
        self.options = options
        self.workers = options.configuration.cpus.count
        self.laneCount = options.configuration.lanes.count
        self.laneNames = options.configuration.lanes.map(\.name)
        let others = max(1, options.configuration.cpus.count - 1)
        self.hopCap = options.configuration.lanes.map { max(4, min(256, $0.capacity / (4 * others))) }
    }

    @inline(__always)
    func shard(_ ctx: borrowing WorkerContext) -> Shard { shards[ctx.worker.rawValue] }
}

/// An in-memory key-value server speaking RESP2 (the Redis protocol) on a Spindle engine: keys
/// sharded per worker, a control port on the strict lane and a data port on a weighted lane.
///
/// ```swift
/// var options = KeyValueOptions()
/// options.port = 6380
/// let server = try KeyValueServer(options: options)
/// print("listening on \(server.port)")
/// _ = server.stop()
/// ```
public final class KeyValueServer: Sendable {
    /// The running engine.
    public let engine: Engine
    /// The data port.
    public let port: Int
    /// The control port.
    public let controlPort: Int
    /// The data port's lane.
    public let dataLane: String
    /// The control port's lane (lane 0).
    public let controlLane: String
    let core: ServerCore

    /// Starts the server. `onSignal`, when given, receives SIGTERM and SIGINT as lane-0 events
    /// (the caller then calls ``stop(deadline:)`` from its own thread).
    /// - Throws: ``KeyValueError`` or the engine's ``SpindleError``.
    public init(options: KeyValueOptions, logger: Logger = Logger(label: "spindle-kv"),
                onSignal: (@Sendable (Signal) -> Void)? = nil) throws {
        let config = options.configuration
        guard config.lanes.count >= 2, case .strict = config.lanes[0].policy else {
            throw KeyValueError(description: "spindle-kv: lane 0 must be strict (the control port's) and a weighted lane must follow; the configuration has \(config.lanes.map(\.name))")
        }
        let dataIndex: Int
        if let name = options.dataLane {
            guard let i = config.lanes.firstIndex(where: { $0.name == name }), i > 0 else {
                throw KeyValueError(description: "spindle-kv: no weighted lane named \"\(name)\"; the configuration has \(config.lanes.map(\.name))")
            }
            dataIndex = i
        } else {
            guard let i = config.lanes.firstIndex(where: { if case .weighted = $0.policy { true } else { false } }) else {
                throw KeyValueError(description: "spindle-kv: the configuration has no weighted lane for the data port")
            }
            dataIndex = i
        }
        let core = ServerCore(options: options)
        var builder = Engine.Builder(configuration: config, logger: logger)
        let control = Lane(index: 0), data = Lane(index: dataIndex)
        core.requestKind = try builder.register(HopMessage.self) { m, ctx in core.shard(ctx).serve(m, ctx) }
        core.replyKind = try builder.register(HopMessage.self) { m, ctx in core.shard(ctx).received(m, ctx) }
        let dataListeners = try builder.listen(on: SocketAddress(host: options.host, port: options.port), lane: data, on: .spread) { e, ctx in
            core.shard(ctx).onConnection(e, lane: dataIndex, ctx)
        }
        let controlListeners = try builder.listen(on: SocketAddress(host: options.host, port: options.controlPort), lane: control) { e, ctx in
            core.shard(ctx).onConnection(e, lane: 0, ctx)
        }
        for w in 0..<core.workers {
            try builder.timer(every: options.sweepInterval, lane: data, on: .worker(WorkerID(w))) { _, ctx in
                let shard = core.shard(ctx)
                shard.sweep()
                if !shard.stalled.isEmpty { shard.retryStalled(ctx) }
            }
        }
        if let onSignal, !stopSignals().isEmpty {
            try builder.signals(stopSignals(), lane: control) { e, _ in if let s = e.signal { onSignal(s) } }
        }
        core.shards = (0..<core.workers).map { Shard(worker: $0, core: core) }
        let engine = try builder.start()
        core.engine.withLock { $0 = engine }
        self.engine = engine
        self.core = core
        self.port = dataListeners[0].localPort ?? options.port
        self.controlPort = controlListeners[0].localPort ?? options.controlPort
        core.dataPort.store(port, ordering: .relaxed)
        core.controlPort.store(controlPort, ordering: .relaxed)
        self.dataLane = config.lanes[dataIndex].name
        self.controlLane = config.lanes[0].name
    }

    /// Stops the engine (drains its lanes) and returns its report. Call it from a thread that is
    /// not one of the engine's workers.
    @discardableResult
    public func stop(deadline: Duration = .seconds(5)) -> ShutdownReport? {
        let report = try? engine.shutdownBlocking(deadline: .now + deadline)
        core.engine.withLock { $0 = nil }
        return report
    }

    /// The INFO text (also served by the INFO command).
    public func info() -> String { core.info(section: nil) }
}

/// SIGTERM and SIGINT, less one the process was started with ignored (a shell ignores SIGINT for
/// a background job, `nohup` SIGHUP): that choice of the parent is kept, not overridden.
func stopSignals() -> Set<Signal> {
    var result: Set<Signal> = []
    for s in [Signal.term, Signal.int] {
        var old = sigaction()
        if sigaction(s.rawValue, nil, &old) == 0 && old.__sigaction_handler.sa_handler == nil {  // SIG_DFL
            result.insert(s)
        }
    }
    return result
}
