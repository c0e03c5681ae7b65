import CBenchPeers
import Foundation
import Logging
import Spindle
import Synchronization

/// Spindle's rows of the I/O scenarios, through the public API: `builder.timer(every:)` and
/// `builder.listen` with an echo handler (`ctx.send` of each `data` event's bytes).
enum SpindleIO {
    /// Closed-loop connections of an echo scenario.
    static func connections(_ s: Scenario) -> Int { s == .echo1 ? 1 : 64 }

    /// A builder whose engine does not log its start-up lines (one engine per round).
    static func builder(_ configuration: Engine.Configuration) -> Engine.Builder {
        var logger = Logger(label: "spindle.bench")
        logger.logLevel = .warning
        return Engine.Builder(configuration: configuration, logger: logger)
    }

    /// The lane called `name`, or `fallback` (a `--profile` may name its lanes otherwise).
    static func lane(_ name: String, in configuration: Engine.Configuration, fallback: Int) -> Lane {
        Lane(index: configuration.lanes.firstIndex { $0.name == name } ?? fallback)
    }

    /// The worker on the consumer CPU (worker 1 of the default configuration).
    static func consumer(_ c: BenchConfig) -> WorkerID {
        WorkerID(c.engine.cpus.firstIndex(of: c.consumerCPU) ?? 0)
    }

    /// Stops a round's engine (bounded) and stops watching it.
    static func stop(_ engine: Engine) {
        _ = try? engine.shutdownBlocking(deadline: .now + .seconds(5))
        Watchdog.shared.watch(nil)
    }

    /// `SPINDLE_BENCH_DIAG=1`: the worker's I/O counters after a round.
    static func diagnose(_ label: String, _ engine: Engine, _ w: WorkerID) {
        guard SpindleRound.diagnostics else { return }
        let io = engine.ioStats(w)
        let ws = engine.workerStats(w)
        FileHandle.standardError.write(
            Data(
                "diag \(label): w\(w.rawValue): enters \(io.enters) rearms \(io.rearms) stalled \(io.stalled) nobufs \(io.nobufs) rounds \(ws.rounds) batches \(ws.batches) sleeps \(ws.sleeps)\n"
                    .utf8))
    }

    // MARK: timer

    /// The firings a timer round records (one handler at a time: the worker's).
    final class TimerRound: @unchecked Sendable {
        let target: Int
        let samples: SampleBuffer
        let done = Completion()
        var fired = 0
        var coalesced = 0
        var startNS: UInt64 = 0
        var endNS: UInt64 = 0
        var mallocStart: UInt64 = 0
        var mallocEnd: UInt64 = 0
        var failure: String?

        init(target: Int) {
            self.target = target
            samples = SampleBuffer(capacity: target)
        }

        @inline(__always)
        func fire(_ t: TimerEvent) {
            guard fired < target else { return }
            if fired == 0 {
                mallocStart = mallocsSoFar()
                startNS = nowNS()
            }
            let (s, a) = t.lateness.components
            samples.append(UInt64(max(0, s)) &* 1_000_000_000 &+ UInt64(max(0, a / 1_000_000_000)))
            coalesced += t.coalesced
            fired += 1
            if fired == target {
                endNS = nowNS()
                mallocEnd = mallocsSoFar()
                done.signal()
            }
        }
    }

    /// A periodic timer on worker 1 of an otherwise idle engine, in the strict lane: each firing's
    /// `lateness` (its deadline → the worker reaping it, the engine's own figure: the point where a
    /// raw loop's `read` or `io_uring_wait_cqe` returns).
    static func timer(_ c: BenchConfig) throws -> Trial {
        let round = TimerRound(target: c.timerFirings)
        var b = builder(c.engine)
        let worker = consumer(c)
        let handle = try b.timer(
            every: .nanoseconds(Int64(c.timerPeriodNanoseconds)), lane: lane("critical", in: c.engine, fallback: 0),
            on: .worker(worker)
        ) { t, _ in
            if let e = t.error {
                round.failure = "the timer ended with \(e)"
                round.done.signal()
                return
            }
            if !t.isCancelled { round.fire(t) }
        }
        let engine = try b.start()
        Watchdog.shared.watch(engine)
        let bound = Double(c.timerFirings) * Double(c.timerPeriodNanoseconds) / 1e9 * 3 + 10
        let finished = round.done.wait(seconds: bound)
        handle.cancel()
        diagnose("timer", engine, worker)
        stop(engine)
        if let f = round.failure { throw BenchError.runFailed("timer: \(f)") }
        guard finished else {
            throw BenchError.runFailed("timer: \(round.fired) of \(round.target) firings in \(Int(bound)) s")
        }
        if SpindleRound.diagnostics {
            print("diag timer: \(round.coalesced) periods coalesced", to: &standardError)
        }
        return Trial(
            events: round.target, seconds: Double(round.endNS &- round.startNS) / 1e9, latencies: round.samples.values,
            mallocs: round.mallocEnd &- round.mallocStart)
    }

    // MARK: echo

    /// Problems an echo handler met (a refused send would leave a client waiting for its echo).
    final class Problems: Sendable {
        let count = Atomic<Int>(0)
        let first = Mutex<String?>(nil)
        func record(_ what: String) {
            if count.add(1, ordering: .relaxed).oldValue == 0 { first.withLock { $0 = what } }
        }
        func check(_ label: String) throws {
            let n = count.load(ordering: .relaxed)
            if n > 0 {
                throw BenchError.runFailed("\(label): \(n) echo problems, the first: \(first.withLock { $0 ?? "?" })")
            }
        }
    }

    /// The echo handler: each `data` event's bytes sent back with `ctx.send` (the engine copies
    /// them into a send chunk; one `sent` event per call follows).
    @inline(__always)
    static func echo(_ e: borrowing ConnectionEvent, _ ctx: borrowing WorkerContext, _ problems: Problems) {
        switch e.kind {
        case .data:
            do {
                _ = try e.withBytes { span in try span.withUnsafeBytes { try ctx.send($0, on: e.connection) } }
            } catch {
                problems.record("send: \(error)")
            }
        case .sent:
            if let err = e.error { problems.record("sent: \(err)") }
        default:
            break
        }
    }

    /// An echo server on worker 1 (a listener in the `normal` lane), the shared client on CPU 0.
    static func echo(_ s: Scenario, _ c: BenchConfig) throws -> Trial {
        var b = builder(c.engine)
        let worker = consumer(c)
        let problems = Problems()
        let handles = try b.listen(
            on: .loopback(port: 0), lane: lane("normal", in: c.engine, fallback: c.engine.lanes.count - 1),
            on: .worker(worker)
        ) { e, ctx in echo(e, ctx, problems) }
        let engine = try b.start()
        Watchdog.shared.watch(engine)
        defer { stop(engine) }
        guard let port = handles.first?.localPort else { throw BenchError.runFailed("\(s.rawValue): no listening port") }
        let n = connections(s)
        let trial = try EchoClient.run(
            c, port: port, connections: n, messages: c.echoMessages(connections: n),
            serverTID: engine.threadID(of: worker), label: "\(s.rawValue) spindle")
        diagnose(s.rawValue, engine, worker)
        try problems.check(s.rawValue)
        return trial
    }

    // MARK: io-priority

    /// One engine with one worker (the consumer CPU): a control listener in the strict lane
    /// (`critical`) and a bulk listener in the last lane (`bulk`), both echoing. `io-priority`: 64
    /// bulk connections flood while the control connection pings every 1 ms; `io-priority-unloaded`:
    /// the pings alone.
    static func ioPriority(_ s: Scenario, _ c: BenchConfig) throws -> Trial {
        var configuration = c.engine
        configuration.cpus = [c.consumerCPU]
        var b = builder(configuration)
        let problems = Problems()
        let control = try b.listen(
            on: .loopback(port: 0), lane: lane("critical", in: configuration, fallback: 0), on: .worker(WorkerID(0))
        ) { e, ctx in echo(e, ctx, problems) }
        let bulk = try b.listen(
            on: .loopback(port: 0), lane: lane("bulk", in: configuration, fallback: configuration.lanes.count - 1),
            on: .worker(WorkerID(0))
        ) { e, ctx in echo(e, ctx, problems) }
        let engine = try b.start()
        Watchdog.shared.watch(engine)
        defer { stop(engine) }
        guard let controlPort = control.first?.localPort, let bulkPort = bulk.first?.localPort else {
            throw BenchError.runFailed("\(s.rawValue): no listening port")
        }
        let trial = try EchoClient.run(
            c, port: bulkPort, controlPort: controlPort,
            connections: s == .ioPriority ? c.ioPriorityBulkConnections : 0, pings: c.ioPriorityPings,
            serverTID: engine.threadID(of: WorkerID(0)), label: "\(s.rawValue) spindle")
        diagnose(s.rawValue, engine, WorkerID(0))
        try problems.check(s.rawValue)
        return trial
    }
}
