import CBenchPeers

/// The raw C peers (`CBenchPeers`): the physical limits of each handoff.
enum CPeers {
    static var contenders: [Contender] {
        [
            Contender(system: .rawCRing, scenarios: [.crossCore, .sameCore], trial: ring),
            Contender(
                system: .rawMPSC, scenarios: [.foreignThread, .priorityIsolation, .priorityBaseline], trial: mpsc),
            Contender(system: .rawMsgring, scenarios: [.wakeWorker], trial: wake),
            Contender(system: .rawEventfd, scenarios: [.wakeForeign], trial: wake),
            Contender(system: .mutexQueue, scenarios: [.crossCore, .priorityIsolation], trial: mutexQueue),
        ] + CIOPeers.contenders
    }

    static func check(_ rc: Int32, _ what: String) throws(BenchError) {
        if rc != 0 { throw .runFailed("\(what) failed: errno \(rc)") }
    }

    /// Runs a C peer on a fresh thread (the C entry points pin the thread they run on) and counts
    /// the allocations of the whole call.
    static func measured(_ body: @escaping (UnsafeMutablePointer<cbp_trial>) -> Int32) throws -> (cbp_trial, UInt64) {
        let before = mallocsSoFar()
        let (rc, t) = try PinnedThread.run(cpu: nil) { () -> (Int32, cbp_trial) in
            var t = cbp_trial()
            let rc = body(&t)
            return (rc, t)
        }
        let mallocs = mallocsSoFar() - before
        try check(rc, "C peer")
        return (t, mallocs)
    }

    static func trial(_ t: cbp_trial, mallocs: UInt64, latencies: [UInt64] = [], depth: Double? = nil) -> Trial {
        Trial(
            events: Int(t.events), seconds: Double(t.elapsed_ns) / 1e9, latencies: latencies, mallocs: mallocs,
            meanDepth: depth)
    }

    static func ring(_ s: Scenario, _ c: BenchConfig) throws -> Trial {
        let n = UInt64(c.events(.fast))
        let (p, q) = (Int32(c.producerCPU), Int32(c.consumerCPU))
        let (t, m) = try measured { s == .sameCore ? cbp_spsc_same(n, p, $0) : cbp_spsc_cross(n, p, q, $0) }
        return trial(t, mallocs: m)
    }

    static func mpsc(_ s: Scenario, _ c: BenchConfig) throws -> Trial {
        if s == .foreignThread {
            let n = UInt64(c.events(.fast))
            let (t, m) = try measured { cbp_mpsc_cross(n, Int32(c.producerCPU), Int32(c.consumerCPU), $0) }
            return trial(t, mallocs: m)
        }
        return try priority(CBP_FIFO_MPSC, s, c, speed: .fast)
    }

    static func mutexQueue(_ s: Scenario, _ c: BenchConfig) throws -> Trial {
        if s == .crossCore {
            let n = UInt64(c.events(.medium))
            let (t, m) = try measured { cbp_mutexq_cross(n, Int32(c.producerCPU), Int32(c.consumerCPU), $0) }
            return trial(t, mallocs: m)
        }
        return try priority(CBP_FIFO_MUTEXQ, s, c, speed: .medium)
    }

    static func priority(_ kind: cbp_fifo, _ s: Scenario, _ c: BenchConfig, speed: BenchConfig.Speed) throws -> Trial {
        let flood = s == .priorityBaseline ? 0 : UInt64(c.floodEvents(speed))
        let probes = UInt64(c.baselineProbes)
        let capacity = Int(flood == 0 ? probes : flood / UInt64(c.probeEvery)) + 1
        let samples = SampleBuffer(capacity: capacity)
        let (t, m) = try measured {
            cbp_prio_fifo(
                kind, flood, probes, UInt32(c.backlog), UInt32(c.probeEvery), UInt32(c.workIterations),
                Int32(c.producerCPU), Int32(c.consumerCPU), samples.base, UInt64(samples.capacity), $0)
        }
        let lat = Array(UnsafeBufferPointer(start: samples.base, count: Int(t.samples)))
        let depth = flood == 0 || t.samples == 0 ? nil : Double(t.depth_sum) / Double(t.samples)
        return trial(t, mallocs: m, latencies: lat, depth: depth)
    }

    static func wake(_ s: Scenario, _ c: BenchConfig) throws -> Trial {
        let n = c.wakeEvents
        let samples = SampleBuffer(capacity: n)
        let (t, m) = try measured {
            s == .wakeWorker
                ? cbp_wake_msgring(
                    UInt32(n), Int32(c.producerCPU), Int32(c.consumerCPU), c.settleNanoseconds, samples.base, $0)
                : cbp_wake_eventfd(
                    UInt32(n), Int32(c.producerCPU), Int32(c.consumerCPU), c.settleNanoseconds, samples.base, $0)
        }
        return trial(t, mallocs: m, latencies: Array(UnsafeBufferPointer(start: samples.base, count: Int(t.samples))))
    }
}
