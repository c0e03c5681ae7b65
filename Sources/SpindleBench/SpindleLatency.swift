import Spindle

/// Spindle's latency rows: wake-ups of a sleeping worker, and priority isolation under a flood.
enum SpindleLatency {
    /// Waits until worker `w` has gone back to sleep after event `i` was handled (its `sleeps`
    /// counter moved past `sleepsBefore`), then `settle` more so its vCPU has halted. Throws when
    /// the worker never handles the event.
    static func waitAsleep(_ r: SpindleRound, _ engine: Engine, handled i: Int, sleepsBefore: UInt64) throws(BenchError)
    {
        let deadline = nowNS() + 2_000_000_000
        while r.handled.load(ordering: .acquiring) < i {
            if nowNS() > deadline { throw .runFailed("event \(i) was not handled within 2 s") }
            relax()
        }
        // The spin time plus a margin bounds the wait if a sleep was missed (e.g. counted before
        // `sleepsBefore` was read).
        let spin =
            UInt64(r.config.engine.spin.components.attoseconds / 1_000_000_000) + UInt64(
                r.config.engine.spin.components.seconds) * 1_000_000_000
        let giveUp = nowNS() + spin + 2_000_000
        while engine.workerStats(r.consumer).sleeps <= sleepsBefore && nowNS() < giveUp { relax() }
        let until = nowNS() + r.config.settleNanoseconds
        while nowNS() < until { relax() }
    }

    /// One event at a time to sleeping worker 1: from a handler on worker 0 (`wake-worker`, the
    /// MSG_RING path) or from a pinned foreign thread (`wake-foreign`, the eventfd path). The sink
    /// records post-to-handler latency.
    static func wake(_ s: Scenario, _ c: BenchConfig) throws -> Trial {
        let n = c.wakeEvents
        let round = SpindleRound(scenario: s, batched: false, config: c, samples: n)
        round.events = n
        round.target = n
        /// The loop shared by both variants; `post` sends one stamped event.
        @Sendable func loop(_ r: SpindleRound, _ engine: Engine, _ post: (BenchEvent) -> Void) {
            r.begin()
            var sleeps = engine.workerStats(r.consumer).sleeps &- 1
            for i in 0..<r.events {
                do { try waitAsleep(r, engine, handled: i, sleepsBefore: sleeps) } catch {
                    r.fail("\(error)")
                    return
                }
                sleeps = engine.workerStats(r.consumer).sleeps
                post(BenchEvent(value: UInt64(i), stamp: nowNS()))
            }
        }
        if s == .wakeWorker {
            let engine = try round.start(configuration: c.engine) { r, ctx in
                guard let engine = r.engine else { return }
                let kind = r.eventKind!
                let lane = r.lane
                let to = Destination.worker(r.consumer)
                // The driver waits inside this handler for each event to be handled, so it
                // publishes each post at once (`flush`) instead of at the end of its batch.
                loop(r, engine) {
                    postRetrying(ctx, $0, kind, lane, to)
                    ctx.flush()
                }
            }
            try engine.post(Go(phase: 1), as: round.goKind, lane: round.lane, to: .worker(round.producer))
        } else {
            let engine = try round.start(configuration: c.engine) { _, _ in }
            let kind = round.eventKind!
            let lane = round.lane
            let to = Destination.worker(round.consumer)
            let t = try PinnedThread(cpu: c.producerCPU) {
                loop(round, engine) { postRetrying(engine, $0, kind, lane, to) }
            }
            t.join()
        }
        return try round.complete(latencies: true)
    }

    /// One worker (on the consumer CPU) and one pinned flooder thread, nothing else: the flooder
    /// posts to the last lane, holding at most D unhandled, and after every K posts a lane-0 probe
    /// stamped at the `post` call. `priority-baseline` posts the probes alone, one at a time.
    static func priority(_ s: Scenario, _ c: BenchConfig) throws -> Trial {
        var configuration = c.engine
        configuration.cpus = [c.consumerCPU]
        let flooded = s == .priorityIsolation
        let flood = flooded ? c.floodEvents(.fast) : 0
        let probes = flooded ? flood / c.probeEvery : c.baselineProbes
        let round = SpindleRound(scenario: s, batched: false, config: c, samples: probes)
        round.events = flooded ? flood : probes
        round.target = flood + probes
        round.work = UInt32(c.workIterations)
        round.producer = WorkerID(0)
        round.consumer = WorkerID(0)
        let engine = try round.start(configuration: configuration) { _, _ in }
        let kind = round.eventKind!
        let floodLane = Lane(index: configuration.lanes.count - 1)
        let probeLane = round.probeLane
        let to = Destination.worker(WorkerID(0))
        let t = try PinnedThread(cpu: c.producerCPU) {
            round.begin()
            var posted = 0
            if !flooded {
                for i in 0..<probes {
                    while round.handled.load(ordering: .acquiring) != posted { relax() }
                    postRetrying(engine, BenchEvent(value: UInt64(i), stamp: nowNS()), kind, probeLane, to)
                    posted += 1
                }
                return
            }
            let d = c.backlog
            let k = c.probeEvery
            var depth = 0
            for i in 0..<flood {
                while posted - round.handled.load(ordering: .acquiring) >= d { relax() }
                postRetrying(engine, BenchEvent(value: UInt64(i), stamp: 0), kind, floodLane, to)
                posted += 1
                if (i + 1) % k == 0 {
                    depth += posted - round.handled.load(ordering: .acquiring)
                    postRetrying(engine, BenchEvent(value: UInt64(i), stamp: nowNS()), kind, probeLane, to)
                    posted += 1
                }
            }
            round.depthSum = depth
        }
        t.join()
        let trial = try round.complete(latencies: true)
        var out = trial
        out.meanDepth = flooded && probes > 0 ? Double(round.depthSum) / Double(probes) : nil
        return out
    }
}
