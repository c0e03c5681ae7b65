import Glibc
import Logging
import Spindle

/// Where the echo server listens and what one connection may cost.
public struct EchoOptions: Sendable {
    /// Numeric address to listen on.
    public var host = "127.0.0.1"
    /// The bulk port (0: any free port), on ``bulkLane`` on every worker (`SO_REUSEPORT`).
    public var port = 7000
    /// The control port (0: any free port), on lane 0 (strict), worker 0.
    public var controlPort = 7001
    /// The engine configuration.
    public var configuration = Engine.Configuration.hostDefault
    /// The bulk port's lane by name; nil: the first weighted lane.
    public var bulkLane: String?
    /// Bytes one connection may have waiting to be echoed (the worker's send chunks were all
    /// queued, or the peer does not read); past it the connection is closed.
    public var maxPending = 4 << 20
    /// Defaults: 127.0.0.1:7000 and :7001, the embedded default configuration.
    public init() {}
}

/// A TCP echo server on Spindle: every byte a client sends comes back, in order. The control
/// port is served on the strict lane, so it answers at once while the bulk port floods.
public final class EchoServer: Sendable {
    /// The running engine.
    public let engine: Engine
    /// The bulk port.
    public let port: Int
    /// The control port.
    public let controlPort: Int
    /// The bulk port's lane name.
    public let bulkLane: String

    /// Starts the server; `onSignal` receives SIGTERM and SIGINT as lane-0 events.
    public init(options: EchoOptions, logger: Logger = Logger(label: "spindle-echo"),
                onSignal: (@Sendable (Signal) -> Void)? = nil) throws {
        let config = options.configuration
        guard config.lanes.count >= 2, case .strict = config.lanes[0].policy else {
            throw EchoError(description: "spindle-echo: lane 0 must be strict and a weighted lane must follow; the configuration has \(config.lanes.map(\.name))")
        }
        let index: Int
        if let name = options.bulkLane {
            guard let i = config.lanes.firstIndex(where: { $0.name == name }), i > 0 else {
                throw EchoError(description: "spindle-echo: no lane named \"\(name)\" after lane 0; the configuration has \(config.lanes.map(\.name))")
            }
            index = i
        } else {
            guard let i = config.lanes.firstIndex(where: { if case .weighted = $0.policy { true } else { false } }) else {
                throw EchoError(description: "spindle-echo: the configuration has no weighted lane")
            }
            index = i
        }
        let states = EchoStates(workers: config.cpus.count, maxPending: options.maxPending)
        var builder = Engine.Builder(configuration: config, logger: logger)
        let bulk = try builder.listen(on: SocketAddress(host: options.host, port: options.port), lane: Lane(index: index), on: .spread) { e, ctx in
            states.states[ctx.worker.rawValue].handle(e, ctx)
        }
        let control = try builder.listen(on: SocketAddress(host: options.host, port: options.controlPort), lane: Lane(index: 0)) { e, ctx in
            states.states[ctx.worker.rawValue].handle(e, ctx)
        }
        if let onSignal, !stopSignals().isEmpty {
            try builder.signals(stopSignals(), lane: Lane(index: 0)) { e, _ in if let s = e.signal { onSignal(s) } }
        }
        engine = try builder.start()
        port = bulk[0].localPort ?? options.port
        controlPort = control[0].localPort ?? options.controlPort
        bulkLane = config.lanes[index].name
    }

    /// Stops the engine (drains its lanes). Call it from a thread that is not a worker.
    @discardableResult
    public func stop(deadline: Duration = .seconds(5)) -> ShutdownReport? {
        try? engine.shutdownBlocking(deadline: .now + deadline)
    }
}

/// Why the echo server did not start.
public struct EchoError: Error, CustomStringConvertible {
    /// One line.
    public let description: String
}

/// One state per worker, touched only on its worker's thread.
final class EchoStates: @unchecked Sendable {
    let states: [EchoWorker]
    init(workers: Int, maxPending: Int) { states = (0..<workers).map { _ in EchoWorker(maxPending: maxPending) } }
}

/// A worker's connections: bytes the engine's send chunks could not take yet wait here (bounded).
final class EchoWorker {
    let maxPending: Int
    var pending: [Connection: [UInt8]] = [:]
    /// Connections with pending bytes, retried when a send completes on this worker.
    var waiting: [Connection] = []

    init(maxPending: Int) { self.maxPending = maxPending }

    func handle(_ e: borrowing ConnectionEvent, _ ctx: borrowing WorkerContext) {
        switch e.kind {
        case .data:
            let c = e.connection
            if pending[c] != nil {  // keep order: behind what already waits
                e.withBytes { span in span.withUnsafeBytes { hold(c, $0, ctx) } }
                return
            }
            e.withBytes { span in
                span.withUnsafeBytes { bytes in
                    var off = 0
                    while off < bytes.count {
                        let n = min(bytes.count - off, ConnectionError.maxSend)
                        do throws(ConnectionError) {
                            try ctx.send(UnsafeRawBufferPointer(rebasing: bytes[off..<(off + n)]), on: c)
                        } catch let error where error.code == .sendQueueFull {
                            hold(c, UnsafeRawBufferPointer(rebasing: bytes[off...]), ctx)
                            return
                        } catch {
                            return
                        }
                        off += n
                    }
                }
            }
        case .sent:
            if !waiting.isEmpty { retry(ctx) }
        case .closed:
            pending[e.connection] = nil
        default: break
        }
    }

    func hold(_ c: Connection, _ bytes: UnsafeRawBufferPointer, _ ctx: borrowing WorkerContext) {
        let have = pending[c]?.count ?? 0
        if have + bytes.count > maxPending {
            pending[c] = nil
            try? ctx.close(c)  // a peer that does not read: bounded, then closed
            return
        }
        if pending[c] == nil { waiting.append(c) }
        pending[c, default: []].append(contentsOf: bytes)
    }

    func retry(_ ctx: borrowing WorkerContext) {
        let list = waiting
        waiting.removeAll(keepingCapacity: true)
        for c in list {
            guard var bytes = pending.removeValue(forKey: c) else { continue }
            var off = 0
            var full = false
            while off < bytes.count {
                let n = min(bytes.count - off, ConnectionError.maxSend)
                let r: ConnectionError? = bytes.withUnsafeBytes { b -> ConnectionError? in
                    do throws(ConnectionError) {
                        try ctx.send(UnsafeRawBufferPointer(rebasing: b[off..<(off + n)]), on: c)
                        return nil
                    } catch { return error }
                }
                if let r {
                    full = r.code == .sendQueueFull
                    break
                }
                off += n
            }
            if full {
                bytes.removeFirst(off)
                pending[c] = bytes
                waiting.append(c)
            }
        }
    }
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
