import CBenchPeers
import Foundation
import Logging
import Spindle
import Synchronization

/// The benchmark's event: 16 bytes (a value the handler reads, and a post-time stamp for probes).
struct BenchEvent: InlineEvent {
    var value: UInt64
    var stamp: UInt64
}

/// Starts a round's driver on a worker (`phase` 1), or continues a same-core burst (`phase` 2).
struct Go: InlineEvent {
    var phase: UInt64
}

/// Per-worker counters of the sink handler (core-local state: no lock, no atomics).
struct Tally {
    var count = 0
    var sum: UInt64 = 0
}

/// Shared by one Spindle round's handlers, its driver and the harness thread. Written before the
/// engine starts or by one thread at a time (the handoffs go through the engine's rings, whose
/// release/acquire order them), except for `handled`, which is atomic.
final class SpindleRound: @unchecked Sendable {
    let scenario: Scenario
    let batched: Bool
    let config: BenchConfig
    /// Events the sink handles before the round ends.
    var target = 0
    /// Flood events (priority) or events to post.
    var events = 0
    /// cbp_work iterations per non-probe event.
    var work: UInt32 = 0
    /// Same-core: events still to post in later bursts.
    var remaining = 0
    var engine: Engine?
    var eventKind: EventKind<BenchEvent>!
    var goKind: EventKind<Go>!
    var lane = Lane(index: 0)
    var probeLane = Lane(index: 0)
    var producer = WorkerID(0)
    var consumer = WorkerID(1)
    var startNS: UInt64 = 0
    var endNS: UInt64 = 0
    var mallocStart: UInt64 = 0
    var mallocEnd: UInt64 = 0
    var depthSum = 0
    var failure: String?
    /// Events handled so far, published every 8 events and at every probe (credit window, wake loop).
    let handled = Atomic<Int>(0)
    let samples: SampleBuffer
    let done = Completion()
    /// `post(contentsOf:)` source: one batch of 32, allocated before the round.
    let batch: UnsafeMutableBufferPointer<BenchEvent>

    static let batchSize = 32
    /// `SPINDLE_BENCH_STALL_AFTER=N` (tests only): the sink never returns from its N-th event (N a
    /// multiple of 8), so the watchdog's exit can be tested on a real round.
    static let stallAfter = ProcessInfo.processInfo.environment["SPINDLE_BENCH_STALL_AFTER"].flatMap(Int.init) ?? .max

    /// A handler that never returns (the watchdog test's stalled round).
    static func stallForever() -> Never {
        while true { sleep(1) }
    }

    /// `SPINDLE_BENCH_DIAG=1` prints per-round engine counters to stderr.
    static let diagnostics = ProcessInfo.processInfo.environment["SPINDLE_BENCH_DIAG"] != nil

    init(scenario: Scenario, batched: Bool, config: BenchConfig, samples: Int) {
        self.scenario = scenario
        self.batched = batched
        self.config = config
        self.samples = SampleBuffer(capacity: samples)
        batch = .allocate(capacity: SpindleRound.batchSize)
        batch.initialize(repeating: BenchEvent(value: 0, stamp: 0))
    }

    deinit { batch.deallocate() }

    /// Marks the start of the measured window (producer side).
    @inline(__always)
    func begin() {
        mallocStart = mallocsSoFar()
        startNS = nowNS()
    }

    /// The sink's last event: closes the window and wakes the harness thread.
    @inline(__always)
    func finish() {
        endNS = nowNS()
        mallocEnd = mallocsSoFar()
        done.signal()
    }

    /// Stops the round early with a reason (e.g. a post that kept failing).
    func fail(_ why: String) {
        failure = why
        done.signal()
    }

    /// The sink handler's body: reads the payload, records probes, counts, ends the round.
    @inline(__always)
    func sink(_ e: BenchEvent, _ tally: inout Tally) {
        if e.stamp != 0 {
            samples.append(nowNS() &- e.stamp)
        } else {
            tally.sum &+= work == 0 ? e.value : cbp_work(e.value, work)
        }
        tally.count &+= 1
        if e.stamp != 0 || tally.count & 7 == 0 {
            handled.store(tally.count, ordering: .releasing)
            if tally.count >= SpindleRound.stallAfter { SpindleRound.stallForever() }
        }
        if tally.count == target {
            handled.store(tally.count, ordering: .releasing)
            tally.count = 0
            finish()
        }
    }

    /// Builds an engine whose `BenchEvent` handler is the sink and whose `Go` handler is `driver`,
    /// starts it, and remembers it.
    func start(
        configuration: Engine.Configuration,
        driver: @escaping @Sendable (SpindleRound, borrowing WorkerContext) -> Void
    ) throws -> Engine {
        var logger = Logger(label: "spindle.bench")
        logger.logLevel = .warning  // one engine per round: its start-up lines would drown the table
        var builder = Engine.Builder(configuration: configuration, logger: logger)
        let tallies = builder.coreLocal { _ in Tally() }
        eventKind = try builder.register(BenchEvent.self, using: tallies) { e, tally, _ in
            self.sink(e, &tally)
        }
        goKind = try builder.register(Go.self) { _, ctx in driver(self, ctx) }
        // `Go` is the in-worker producer: one handler call that runs a whole round by design. The
        // stall watchdog would report it every round; any other slow handler is still reported.
        let go = String(describing: Go.self)  // made here: the hook allocates nothing for Go's reports
        builder.onSlowHandler { [logger] report in
            if report.eventType != go { logger.warning("spindle: \(report)") }
        }
        let lanes = configuration.lanes
        lane = Lane(index: lanes.firstIndex { $0.name == "normal" } ?? (lanes.count - 1))
        probeLane = Lane(index: 0)
        let engine = try builder.start()
        self.engine = engine
        Watchdog.shared.watch(engine)
        return engine
    }

    /// Waits for the round, shuts the engine down, and returns what it measured.
    func complete(latencies: Bool, depth: Double? = nil) throws -> Trial {
        let finished = done.wait(seconds: 120)
        if let engine, SpindleRound.diagnostics {
            // SPINDLE_BENCH_DIAG=1: where the time goes — batch sizes, full-ring retries, sleeps.
            var line = "diag \(scenario.rawValue)\(batched ? " batch" : ""):"
            for w in 0..<engine.workerCount {
                let ws = engine.workerStats(WorkerID(w))
                let ls = engine.stats(worker: WorkerID(w), lane: lane)
                let handledPerBatch = ws.batches > 0 ? Double(ls.handled) / Double(ws.batches) : 0
                line +=
                    " w\(w): handled \(ls.handled) batches \(ws.batches) (\(String(format: "%.1f", handledPerBatch))/batch) rounds \(ws.rounds) rejected(retries) \(ls.rejected) sleeps \(ws.sleeps) wakeups \(ws.wakeupsSent) foreign-wakeups \(ws.foreignWakeups);"
            }
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        if let engine {
            self.engine = nil
            _ = try? engine.shutdownBlocking(deadline: .now + .seconds(5))
            Watchdog.shared.watch(nil)
        }
        if let failure { throw BenchError.runFailed("\(scenario.rawValue): \(failure)") }
        guard finished else { throw BenchError.runFailed("\(scenario.rawValue): the round did not finish in 120 s") }
        return Trial(
            events: scenario == .priorityIsolation ? events : target,
            seconds: Double(endNS &- startNS) / 1e9,
            latencies: latencies ? samples.values : [],
            mallocs: mallocEnd &- mallocStart, meanDepth: depth)
    }
}

/// Posts until the engine accepts (a full lane is retried: the consumer is draining it).
@inline(__always)
func postRetrying(
    _ ctx: borrowing WorkerContext, _ e: BenchEvent, _ kind: EventKind<BenchEvent>, _ lane: Lane,
    _ to: Destination?
) {
    while true {
        do {
            try ctx.post(e, as: kind, lane: lane, to: to)
            return
        } catch {
            relax()
        }
    }
}

/// Posts from any thread until the engine accepts.
@inline(__always)
func postRetrying(_ engine: Engine, _ e: BenchEvent, _ kind: EventKind<BenchEvent>, _ lane: Lane, _ to: Destination) {
    while true {
        do {
            try engine.post(e, as: kind, lane: lane, to: to)
            return
        } catch {
            relax()
        }
    }
}

/// Posts a batch from any thread (or a worker) until the engine accepts all of it.
@inline(__always)
func postBatchRetrying(
    _ engine: Engine, _ batch: UnsafeBufferPointer<BenchEvent>, _ kind: EventKind<BenchEvent>,
    _ lane: Lane, _ to: Destination
) {
    while true {
        do {
            try engine.post(contentsOf: batch, as: kind, lane: lane, to: to)
            return
        } catch {
            relax()
        }
    }
}
