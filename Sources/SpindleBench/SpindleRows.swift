import Spindle

/// Spindle's rows: every scenario through the public API, with a registered closure that reads
/// the payload, core-local counters and the configuration's scheduler. `spindle` posts one event
/// per call; `spindle-batch` uses `post(contentsOf:)` with 32 events where the scenario allows it.
enum SpindleRows {
    static var contenders: [Contender] {
        [
            Contender(system: .spindle, scenarios: Set(Scenario.allCases).subtracting([.profileLoad])) { s, c in
                try trial(s, c, batched: false)
            },
            Contender(system: .spindleBatch, scenarios: [.crossCore, .sameCore, .foreignThread]) { s, c in
                try trial(s, c, batched: true)
            },
        ]
    }

    static func trial(_ s: Scenario, _ c: BenchConfig, batched: Bool) throws -> Trial {
        switch s {
        case .crossCore: return try crossCore(c, batched: batched)
        case .sameCore: return try sameCore(c, batched: batched)
        case .foreignThread: return try foreign(c, batched: batched)
        case .wakeWorker, .wakeForeign: return try SpindleLatency.wake(s, c)
        case .priorityIsolation, .priorityBaseline: return try SpindleLatency.priority(s, c)
        case .profileLoad: throw BenchError.runFailed("profile-load needs a profile loader (ProfileLoad.contender)")
        case .timer: return try SpindleIO.timer(c)
        case .echo1, .echo64: return try SpindleIO.echo(s, c)
        case .ioPriority, .ioPriorityUnloaded: return try SpindleIO.ioPriority(s, c)
        case .executor: return try ExecutorHop.spindle(c, taskPreference: true)
        }
    }

    /// Producer: a handler on worker 0 that posts every event to worker 1 (`ctx.post(to:)`, the
    /// SPSC path; the batch row calls `engine.post(contentsOf:)` from that handler, which detects
    /// the worker thread). Consumer: the sink handler on worker 1.
    static func crossCore(_ c: BenchConfig, batched: Bool) throws -> Trial {
        let round = SpindleRound(scenario: .crossCore, batched: batched, config: c, samples: 0)
        round.events = c.events(.fast)
        round.target = round.events
        let engine = try round.start(configuration: c.engine) { r, ctx in
            let kind = r.eventKind!
            let lane = r.lane
            let to = Destination.worker(r.consumer)
            let n = r.events
            r.begin()
            if r.batched, let engine = r.engine {
                let size = SpindleRound.batchSize
                var i = 0
                while i < n {
                    let m = min(size, n - i)
                    for j in 0..<m { r.batch[j].value = UInt64(i + j) }
                    postBatchRetrying(engine, UnsafeBufferPointer(rebasing: r.batch[0..<m]), kind, lane, to)
                    i += m
                }
            } else {
                for i in 0..<n { postRetrying(ctx, BenchEvent(value: UInt64(i), stamp: 0), kind, lane, to) }
            }
        }
        try engine.post(Go(phase: 1), as: round.goKind, lane: round.lane, to: .worker(round.producer))
        return try round.complete(latencies: false)
    }

    /// One worker: the driver posts a burst of 1024 events to its own worker (`ctx.post`, the local
    /// queue) followed by a `Go` that posts the next burst once the sink has handled these.
    static func sameCore(_ c: BenchConfig, batched: Bool) throws -> Trial {
        let round = SpindleRound(scenario: .sameCore, batched: batched, config: c, samples: 0)
        round.events = c.events(.fast)
        round.target = round.events
        round.consumer = round.producer
        let engine = try round.start(configuration: c.engine) { r, ctx in
            let kind = r.eventKind!
            let lane = r.lane
            if r.remaining == 0 && r.startNS == 0 {
                r.remaining = r.events
                r.begin()
            }
            let burst = min(1024, r.remaining)
            let base = r.events - r.remaining
            if r.batched, let engine = r.engine {
                let size = SpindleRound.batchSize
                var i = 0
                while i < burst {
                    let m = min(size, burst - i)
                    for j in 0..<m { r.batch[j].value = UInt64(base + i + j) }
                    postBatchRetrying(
                        engine, UnsafeBufferPointer(rebasing: r.batch[0..<m]), kind, lane, .worker(r.producer))
                    i += m
                }
            } else {
                for i in 0..<burst { postRetrying(ctx, BenchEvent(value: UInt64(base + i), stamp: 0), kind, lane, nil) }
            }
            r.remaining -= burst
            if r.remaining > 0 {
                do { try ctx.post(Go(phase: 2), as: r.goKind, lane: lane) } catch {
                    r.fail("same-core: next burst refused: \(error)")
                }
            }
        }
        try engine.post(Go(phase: 1), as: round.goKind, lane: round.lane, to: .worker(round.producer))
        return try round.complete(latencies: false)
    }

    /// A pinned non-worker thread posts to worker 1 through its MPSC ring.
    static func foreign(_ c: BenchConfig, batched: Bool) throws -> Trial {
        let round = SpindleRound(scenario: .foreignThread, batched: batched, config: c, samples: 0)
        round.events = c.events(.fast)
        round.target = round.events
        let engine = try round.start(configuration: c.engine) { _, _ in }
        let kind = round.eventKind!
        let lane = round.lane
        let to = Destination.worker(round.consumer)
        let n = round.events
        let producer = try PinnedThread(cpu: c.producerCPU) {
            round.begin()
            if batched {
                var i = 0
                while i < n {
                    let m = min(SpindleRound.batchSize, n - i)
                    for j in 0..<m { round.batch[j].value = UInt64(i + j) }
                    postBatchRetrying(engine, UnsafeBufferPointer(rebasing: round.batch[0..<m]), kind, lane, to)
                    i += m
                }
            } else {
                for i in 0..<n { postRetrying(engine, BenchEvent(value: UInt64(i), stamp: 0), kind, lane, to) }
            }
        }
        producer.join()
        return try round.complete(latencies: false)
    }
}
