import CoreMetrics
import Dispatch
import Foundation
import InMemoryLogging
import Logging
import MetricsTestKit
import Spindle
import SpindleMetrics
import Testing

struct Tick: InlineEvent { var seq: UInt64 }
struct Hold: InlineEvent { var worker: UInt32 }
struct Odd: Error {}

/// Counts per (worker, lane), kept by the test's producer and handlers themselves.
final class Grid: @unchecked Sendable {
    let lanes: Int
    private let lock = NSLock()
    private var cells: [Int]
    init(workers: Int, lanes: Int) {
        self.lanes = lanes
        cells = Array(repeating: 0, count: workers * lanes)
    }
    func add(_ w: Int, _ l: Int) { lock.withLock { cells[w * lanes + l] += 1 } }
    subscript(w: Int, l: Int) -> Int { lock.withLock { cells[w * lanes + l] } }
    var total: Int { lock.withLock { cells.reduce(0, +) } }
}

/// One count.
final class Count: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

/// The published metrics reconcile with what producers and handlers counted for themselves.
@Suite(.serialized)
struct EngineMetricsTests {
    /// Every kind of count in every (worker, lane): posts accepted, rejected by a full `reject`
    /// lane, dropped by a full `drop` lane, handled, and failed (handlers throw for odd events).
    /// A sampler runs every 5 ms throughout, and one sample is taken while the workers are held
    /// (posts counted, nothing handled yet); after quiescence and a few more samples, each counter's
    /// total (the sum of the deltas it recorded) equals the tally, and every depth gauge reads 0.
    @Test func publishedCountersReconcileWithTheHandlersTallies() async throws {
        var config = Engine.Configuration.hostDefault
        config.spin = .microseconds(20)
        config.lanes[1].capacity = 64  // "high", reject: fills while the workers are held
        config.lanes[3].capacity = 64
        config.lanes[3].onFull = .drop  // "bulk": the newest is dropped when full
        let names = config.lanes.map(\.name)
        let (workers, lanes) = (config.cpus.count, names.count)
        var builder = Engine.Builder(configuration: config)
        let enqueued = Grid(workers: workers, lanes: lanes)
        let rejected = Grid(workers: workers, lanes: lanes)
        let dropped = Grid(workers: workers, lanes: lanes)
        let handled = Grid(workers: workers, lanes: lanes)
        let failed = Grid(workers: workers, lanes: lanes)
        let release = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        let hold = try builder.register(Hold.self) { _, ctx in
            handled.add(ctx.worker.rawValue, ctx.lane.index)
            entered.signal()
            _ = release.wait(timeout: .now() + 30)
        }
        let ticks = try builder.register(Tick.self) { t, ctx in
            handled.add(ctx.worker.rawValue, ctx.lane.index)
            if t.seq % 2 == 1 {
                failed.add(ctx.worker.rawValue, ctx.lane.index)
                throw Odd()
            }
        }
        let engine = try builder.start()
        let factory = TestMetrics()
        let metrics = EngineMetrics(engine: engine, interval: .milliseconds(5), factory: factory)
        #expect(metrics.isEnabled)
        let sampler = Task { await metrics.run() }

        for w in 0..<workers {
            try engine.post(Hold(worker: UInt32(w)), as: hold, lane: Lane(index: 0), to: .worker(WorkerID(w)))
            enqueued.add(w, 0)
        }
        for _ in 0..<workers { try #require(entered.wait(timeout: .now() + 10) == .success, "workers never held") }
        var seq: UInt64 = 0
        for w in 0..<workers {
            for l in 0..<lanes {
                for _ in 0..<200 {  // 200 > 64: "high" rejects and "bulk" drops the rest
                    seq += 1
                    do {
                        let r = try engine.post(
                            Tick(seq: seq), as: ticks, lane: Lane(index: l), to: .worker(WorkerID(w)))
                        if r == .dropped { dropped.add(w, l) } else { enqueued.add(w, l) }
                    } catch {
                        #expect(error.code == .laneFull, "\(error)")
                        rejected.add(w, l)
                    }
                }
            }
        }
        // A sample while the workers are held: the posts so far, nothing handled yet.
        metrics.sample()
        for w in 0..<workers {
            for (l, name) in names.enumerated() where l > 0 {
                let dims = [("worker", "\(w)"), ("lane", name)]
                #expect(
                    factory.counterTotal(label: "spindle_events_enqueued_total", dimensions: dims)
                        == Int64(enqueued[w, l]))
                #expect(factory.counterTotal(label: "spindle_events_handled_total", dimensions: dims) == 0)
            }
        }
        for _ in 0..<workers { release.signal() }
        let deadline = Date().addingTimeInterval(10)
        while handled.total < enqueued.total && Date() < deadline { usleep(200) }  // bounded wait for the handlers
        try #require(handled.total == enqueued.total, "handled \(handled.total) of \(enqueued.total)")
        sampler.cancel()
        await sampler.value  // its last sample sees the final counts
        metrics.sample()  // samples that see nothing new record nothing
        metrics.sample()

        #expect(rejected.total > 0 && dropped.total > 0 && failed.total > 0, "every kind of count occurs")
        for w in 0..<workers {
            for (l, name) in names.enumerated() {
                let dims = [("worker", "\(w)"), ("lane", name)]
                func published(_ label: String) -> Int {
                    Int(factory.counterTotal(label: "spindle_\(label)", dimensions: dims))
                }
                #expect(published("events_enqueued_total") == enqueued[w, l], "enqueued \(dims)")
                #expect(published("events_rejected_total") == rejected[w, l], "rejected \(dims)")
                #expect(published("events_dropped_total") == dropped[w, l], "dropped \(dims)")
                #expect(published("events_handled_total") == handled[w, l], "handled \(dims)")
                #expect(published("events_failed_total") == failed[w, l], "failed \(dims)")
                #expect(try factory.expectGauge("spindle_lane_depth", dims).lastValue == 0, "depth \(dims)")
            }
            #expect(try factory.expectCounter("spindle_worker_batches_total", [("worker", "\(w)")]).totalValue > 0)
        }
        #expect(engine.stop().drained)
    }

    /// Without a metrics backend nothing is created and the sampler does not run.
    @Test func noBackendCostsNothing() async throws {
        var builder = Engine.Builder(
            configuration: {
                var c = Engine.Configuration.hostDefault
                c.cpus = Array(c.cpus.prefix(1))
                return c
            }())
        _ = try builder.register(Tick.self) { _, _ in }
        let engine = try builder.start()
        let metrics = EngineMetrics(engine: engine, factory: NOOPMetricsHandler.instance)
        #expect(!metrics.isEnabled)
        let returned = Count()
        let run = Task {
            await metrics.run()  // returns at once: no loop
            returned.add()
        }
        let deadline = Date().addingTimeInterval(10)
        while returned.value == 0 && Date() < deadline { usleep(100) }
        #expect(returned.value == 1, "run() kept sampling without a backend")
        run.cancel()
        #expect(engine.stop().drained)
    }

    /// A slow batch is reported once per worker, with `spindle.worker`; later samples stay quiet.
    @Test func aSlowBatchIsAWarningOnce() async throws {
        var config = Engine.Configuration.hostDefault
        config.cpus = Array(config.cpus.prefix(1))
        config.slowBatchThreshold = .microseconds(100)
        var builder = Engine.Builder(configuration: config)
        let done = Count()
        let slow = try builder.register(Tick.self) { _, _ in
            // The slow handler under test: 20 ms, past the threshold even on the engine's coarse clock.
            usleep(20_000)
            done.add()
        }
        let engine = try builder.start()
        let log = InMemoryLogHandler()
        let metrics = EngineMetrics(
            engine: engine, factory: TestMetrics(), logger: Logger(label: "t", factory: { _ in log }))
        for round in 0..<3 {
            try engine.post(Tick(seq: UInt64(round)), as: slow, lane: Lane(index: 0), to: .worker(WorkerID(0)))
            let deadline = Date().addingTimeInterval(10)
            // The worker counts the slow batch after the handler returns: wait for the count.
            while engine.workerStats(WorkerID(0)).slowBatches <= round && Date() < deadline { usleep(200) }
            try #require(engine.workerStats(WorkerID(0)).slowBatches == UInt64(round + 1))
            metrics.sample()
        }
        #expect(done.value == 3)
        let warnings = log.entries.filter { $0.level == .warning }
        #expect(warnings.count == 1, "\(log.entries)")
        #expect(warnings.first?.metadata["spindle.worker"] == "0")
        #expect(engine.stop().drained)
    }
}

extension Engine {
    func stop() -> ShutdownReport { (try? shutdownBlocking(deadline: .now + .seconds(10)))! }
}
