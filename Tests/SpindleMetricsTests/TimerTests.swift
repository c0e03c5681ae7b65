import CoreMetrics
import Dispatch
import Foundation
import MetricsTestKit
@_spi(Testing) import Spindle
import SpindleMetrics
import Testing

struct Busy: InlineEvent { var n: UInt64 }
struct Fanout: InlineEvent { var count: UInt32 }

/// Busy-waits (no sleep) until `minimum` has passed on `ContinuousClock`.
func spin(for minimum: Duration) {
    let clock = ContinuousClock()
    let start = clock.now
    while clock.now - start < minimum {}
}

/// The batch-time and sampled queueing-latency timers: real durations, with the right dimensions,
/// as many as the engine's own counts and the sampling rule say.
@Suite(.serialized)
struct TimerTests {
    static let batchLabel = "spindle_batch_duration_seconds"
    static let latencyLabel = "spindle_queue_latency_seconds"

    /// Waits (at most 10 s) until every worker has taken timing.
    func waitUntilTimed(_ engine: Engine) throws {
        let deadline = Date().addingTimeInterval(10)
        func taken() -> Bool {
            (0..<engine.workerCount).allSatisfy { engine._timingStats(worker: WorkerID($0), lane: Lane(index: 0)).active }
        }
        while !taken() && Date() < deadline { usleep(100) }
        try #require(taken(), "a worker never took timing")
    }

    /// Waits (at most 10 s) until the engine counts `total` events handled and every worker
    /// sleeps again (so its last batch is counted too).
    func waitUntilIdle(_ engine: Engine, handled total: Int) throws {
        let deadline = Date().addingTimeInterval(10)
        func idle() -> Bool {
            let handled = (0..<engine.workerCount).reduce(0) { sum, w in
                sum
                    + engine.configuration.lanes.indices.reduce(0) {
                        $0 + Int(engine.stats(worker: WorkerID(w), lane: Lane(index: $1)).handled)
                    }
            }
            return handled == total
                && (0..<engine.workerCount).allSatisfy { engine.workerStats(WorkerID($0)).isSleeping }
        }
        while !idle() && Date() < deadline { usleep(200) }
        try #require(idle(), "the engine did not handle \(total) events and go idle within 10 s")
    }

    /// Every batch of a handler that busy-waits 200 µs is timed at ≥ 200 µs, in the timer of its
    /// (worker, lane); a worker's timers hold exactly as many values as it counts batches.
    @Test func batchTimesAreRealDurationsPerWorkerAndLane() async throws {
        var config = Engine.Configuration.hostDefault
        config.spin = .microseconds(20)
        let names = config.lanes.map(\.name)
        let workers = config.cpus.count
        var builder = Engine.Builder(configuration: config)
        let handled = Grid(workers: workers, lanes: names.count)
        let busy = try builder.register(Busy.self) { _, ctx in
            spin(for: .microseconds(200))
            handled.add(ctx.worker.rawValue, ctx.lane.index)
        }
        let engine = try builder.start()
        let factory = TestMetrics()
        let metrics = EngineMetrics(engine: engine, timers: try .init(latencySampleShift: 0), factory: factory)
        #expect(metrics.timers?.latencySampleShift == 0)
        try waitUntilTimed(engine)
        let before = (0..<workers).map { engine.workerStats(WorkerID($0)).batches }
        let used: Set<Int> = [1, 2]  // "high" and "normal"
        var posted = 0
        for w in 0..<workers {
            for l in used.sorted() {
                for i in 0..<3 {
                    try engine.post(Busy(n: UInt64(i)), as: busy, lane: Lane(index: l), to: .worker(WorkerID(w)))
                    posted += 1
                }
            }
        }
        try waitUntilIdle(engine, handled: posted)
        metrics.sample()

        for w in 0..<workers {
            var timed = 0
            for (l, name) in names.enumerated() {
                let dims = [("worker", "\(w)"), ("lane", name)]
                let values = try factory.expectTimer(Self.batchLabel, dims).values
                if used.contains(l) {
                    #expect(handled[w, l] == 3)
                    #expect((1...3).contains(values.count), "\(dims): \(values.count) batches for 3 events")
                    #expect(values.allSatisfy { $0 >= 200_000 }, "\(dims): \(values)")
                } else {
                    #expect(values.isEmpty, "\(dims): a lane with no event was timed")
                }
                timed += values.count
                #expect(
                    factory.counterTotal(
                        label: "spindle_timer_durations_lost_total", dimensions: dims + [("timer", "batch")]) == 0)
            }
            let batches = engine.workerStats(WorkerID(w)).batches - before[w]
            #expect(timed == Int(batches), "worker \(w): \(timed) timed, \(batches) batches")
        }
        #expect(engine.stop().drained)
    }

    /// Posts held back behind a blocked worker for ≥ 20 ms: every sampled latency is ≥ 20 ms, and
    /// one post in 2^k of the ring is sampled — ⌊posts / 2^k⌋ from a ring's first post.
    @Test func sampledQueueLatencyCoversTheHold() async throws {
        var config = Engine.Configuration.hostDefault
        config.cpus = Array(config.cpus.prefix(1))
        config.spin = .microseconds(20)
        let names = config.lanes.map(\.name)
        var builder = Engine.Builder(configuration: config)
        let release = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        let hold = try builder.register(Hold.self) { _, _ in
            entered.signal()
            _ = release.wait(timeout: .now() + 30)
        }
        let ticks = try builder.register(Tick.self) { _, _ in }
        let engine = try builder.start()
        let factory = TestMetrics()
        let shift = 2
        let metrics = EngineMetrics(engine: engine, timers: try .init(latencySampleShift: shift), factory: factory)
        try waitUntilTimed(engine)

        try engine.post(Hold(worker: 0), as: hold, lane: Lane(index: 0), to: .worker(WorkerID(0)))
        try #require(entered.wait(timeout: .now() + 10) == .success, "the worker never entered the hold")
        var accepted = 0  // the producer's tally: posts into worker 0's foreign ring of lane "normal"
        for i in 0..<50 {
            if (try? engine.post(Tick(seq: UInt64(i)), as: ticks, lane: Lane(index: 2), to: .worker(WorkerID(0))))
                == .enqueued
            {
                accepted += 1
            }
        }
        let minimum = Duration.milliseconds(20)
        spin(for: minimum)  // every tick was enqueued before this began, and is handled after it
        release.signal()
        try waitUntilIdle(engine, handled: 1 + accepted)
        metrics.sample()

        let dims = [("worker", "0"), ("lane", names[2])]
        let latencies = try factory.expectTimer(Self.latencyLabel, dims).values
        // Ring positions p = 0..<accepted; sampled when (p + 1) % 2^shift == 0.
        let expected = accepted >> shift
        #expect(accepted == 50)
        #expect(latencies.count == expected, "\(latencies.count) samples, expected \(expected) of \(accepted) posts")
        #expect(latencies.allSatisfy { $0 >= 20_000_000 }, "\(latencies)")
        let s = engine._timingStats(worker: WorkerID(0), lane: Lane(index: 2))
        #expect(s.latencies == UInt64(expected) && s.latenciesLost == 0 && s.latenciesMissed == 0, "\(s)")
        // The hold's own lane: one post, position 0, not sampled; its batch lasted the hold.
        let holdDims = [("worker", "0"), ("lane", names[0])]
        #expect(try factory.expectTimer(Self.latencyLabel, holdDims).values.isEmpty)
        #expect(try factory.expectTimer(Self.batchLabel, holdDims).values.allSatisfy { $0 >= 20_000_000 })
        #expect(engine.stop().drained)
    }

    /// A manual engine whose worker 0 fans out 100 events to worker 1 (its SPSC ring, the inline
    /// fast path) while the test thread posts 10 more (the MPSC ring): the events pending on worker
    /// 1 carry exactly the stamps the sampling rule gives — none with timers off.
    func fanout(timers: EngineMetrics.Timers?) throws -> (stamps: Int, factory: TestMetrics, engine: Engine) {
        var config = Engine.Configuration.hostDefault
        config.cpus = [0, 1]
        var builder = Engine.Builder(configuration: config)
        let ticks = try builder.register(Tick.self) { _, _ in }
        let fan = try builder.register(Fanout.self) { f, ctx in
            for i in 0..<UInt64(f.count) {
                try ctx.post(Tick(seq: i), as: ticks, lane: Lane(index: 2), to: .worker(WorkerID(1)))
            }
        }
        let engine = try builder._startManual()
        let factory = TestMetrics()
        let metrics = EngineMetrics(engine: engine, timers: timers, factory: factory)
        try engine.post(Fanout(count: 100), as: fan, lane: Lane(index: 0), to: .worker(WorkerID(0)))
        for i in 0..<10 {
            try engine.post(Tick(seq: UInt64(i)), as: ticks, lane: Lane(index: 2), to: .worker(WorkerID(1)))
        }
        #expect(engine._manualRound(worker: 0).handled == 1)
        let stamps = engine._pendingStamps(worker: 1, lane: 2)
        var handled = 0
        for _ in 0..<100 where handled < 110 { handled += engine._manualRound(worker: 1).handled }
        #expect(handled == 110)
        metrics.sample()
        return (stamps, factory, engine)
    }

    /// Timers off: no stamp on any event, no timer created or recorded, nothing counted.
    @Test func timersOffDoNoWork() throws {
        let off = try fanout(timers: nil)
        #expect(off.stamps == 0, "\(off.stamps) events stamped with timers off")
        #expect(off.factory.timers.isEmpty, "\(off.factory.timers.map(\.label))")
        #expect(off.engine._timingSampleShift == nil)
        for w in 0..<2 {
            for l in 0..<off.engine.configuration.lanes.count {
                let s = off.engine._timingStats(worker: WorkerID(w), lane: Lane(index: l))
                #expect(!s.active && s.batches == 0 && s.latencies == 0 && s.latenciesMissed == 0)
            }
        }

        // The same run with timers on (one in 8): ⌊100 / 8⌋ + ⌊10 / 8⌋ stamps, each one sample.
        let on = try fanout(timers: try .init(latencySampleShift: 3))
        #expect(on.stamps == 100 / 8 + 10 / 8)
        let dims = [("worker", "1"), ("lane", on.engine.configuration.lanes[2].name)]
        #expect(try on.factory.expectTimer(Self.latencyLabel, dims).values.count == on.stamps)
        #expect(try on.factory.expectTimer(Self.batchLabel, dims).values.count >= 1)
        #expect(on.engine._timingSampleShift == 3)
    }

    /// A shift outside 0...20 is refused with a message naming the rule.
    @Test func aBadShiftIsRefused() {
        #expect(throws: SpindleError.self) { try EngineMetrics.Timers(latencySampleShift: 21) }
        #expect(throws: SpindleError.self) { try EngineMetrics.Timers(latencySampleShift: -1) }
        #expect(EngineMetrics.Timers.standard.latencySamplePeriod == 64)
    }
}
