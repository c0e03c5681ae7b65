// package-benchmark suites for Spindle's hot paths: post + dispatch cross-core (worker → worker,
// SPSC), same-core (ctx.post to the own worker's queue) and foreign (non-worker thread → MPSC).
// One iteration posts 1,000 events (scalingFactor .kilo) and waits until the handler has seen them;
// mallocCountTotal must be 0: static thresholds in Thresholds/, checked by
// `swift package benchmark thresholds check`.
import Benchmark
import Dispatch
import Spindle

struct Tick: InlineEvent {
    var value: UInt64
    var stamp: UInt64
}

struct Go: InlineEvent {
    var count: UInt64
}

/// One engine for the whole suite: worker 0 produces (cross-core, same-core), worker 1 consumes.
final class Rig: @unchecked Sendable {
    let engine: Engine
    let tick: EventKind<Tick>
    let crossGo: EventKind<Go>
    let sameGo: EventKind<Go>
    let lane: Lane
    let iteration: Iteration

    init() throws {
        var builder = Engine.Builder()
        let lane = try builder.lane(named: "normal")
        let counters = builder.coreLocal { _ in Counter() }
        let iteration = Iteration()
        // Reads the payload, counts in core-local state, signals once per iteration.
        let tick = try builder.register(Tick.self, using: counters) { t, counter, _ in
            counter.sum &+= t.value
            counter.count &+= 1
            if counter.count == iteration.target {
                counter.count = 0
                iteration.done.signal()
            }
        }
        let crossGo = try builder.register(Go.self) { go, ctx in
            for i in 0..<Int(go.count) {
                while true {
                    do {
                        try ctx.post(Tick(value: UInt64(i), stamp: 0), as: tick, lane: lane, to: .worker(WorkerID(1)))
                        break
                    } catch {}
                }
            }
        }
        let sameGo = try builder.register(Go.self) { go, ctx in
            for i in 0..<Int(go.count) {
                do { try ctx.post(Tick(value: UInt64(i), stamp: 0), as: tick, lane: lane) } catch {}
            }
        }
        self.engine = try builder.start()
        self.tick = tick
        self.crossGo = crossGo
        self.sameGo = sameGo
        self.lane = lane
        self.iteration = iteration
    }

    /// Runs one iteration: `count` events, started by `start`, until the handler has seen them all.
    func run(_ count: Int, _ start: () -> Void) {
        iteration.target = count  // published to the handler by the post's release
        start()
        iteration.done.wait()
    }
}

/// Per-worker counters of the handler.
struct Counter {
    var count = 0
    var sum: UInt64 = 0
}

/// The current iteration's size and its completion signal.
final class Iteration: @unchecked Sendable {
    var target = 0
    let done = DispatchSemaphore(value: 0)
}

let events = 1_000

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 2_000,
        thresholds: [.mallocCountTotal: .init(absolute: [.p0: 0, .p50: 0, .p90: 0, .p99: 0, .p100: 0])]
    )
    let rig: Rig
    do { rig = try Rig() } catch { fatalError("Spindle engine did not start: \(error)") }

    // Worker 0 posts 1,000 events to worker 1 through its SPSC ring; worker 1's handler reads them.
    Benchmark("CrossCorePostDispatch") { _ in
        rig.run(events) {
            _ = try? rig.engine.post(
                Go(count: UInt64(events)), as: rig.crossGo, lane: rig.lane, to: .worker(WorkerID(0)))
        }
    }

    // A handler on worker 1 posts 1,000 events to its own worker (ctx.post, the local queue).
    Benchmark("SameCorePostDispatch") { _ in
        rig.run(events) {
            _ = try? rig.engine.post(
                Go(count: UInt64(events)), as: rig.sameGo, lane: rig.lane, to: .worker(WorkerID(1)))
        }
    }

    // The benchmark thread (not a worker) posts 1,000 events to worker 1 through its MPSC ring.
    Benchmark("ForeignPostDispatch") { _ in
        rig.run(events) {
            for i in 0..<events {
                while true {
                    do {
                        try rig.engine.post(
                            Tick(value: UInt64(i), stamp: 0), as: rig.tick, lane: rig.lane, to: .worker(WorkerID(1)))
                        break
                    } catch {}
                }
            }
        }
    }
}
