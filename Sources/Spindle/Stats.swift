import CSpindle

/// Counts for a (worker, lane): every post is exactly one of `enqueued`, `rejected`, `dropped`,
/// and `enqueued == handled + pending` (exact at quiescence).
public struct LaneStats: Sendable, Hashable, CustomStringConvertible {
    /// Accepted into a ring.
    public var enqueued: UInt64 = 0
    /// The post threw.
    public var rejected: UInt64 = 0
    /// Accepted by a `drop` lane's policy and discarded (always the newest event).
    public var dropped: UInt64 = 0
    /// Handler returned or threw.
    public var handled: UInt64 = 0
    /// Handler threw (included in `handled`).
    public var failed: UInt64 = 0
    /// In a ring, not yet handled (from ring indices).
    public var pending: UInt64 = 0

    /// Zero counts.
    public init() {}
    init(_ s: sp_lane_stats) {
        enqueued = s.enqueued; rejected = s.rejected; dropped = s.dropped
        handled = s.handled; failed = s.failed; pending = s.pending
    }

    /// Sum.
    public static func + (a: LaneStats, b: LaneStats) -> LaneStats {
        var r = a
        r.enqueued += b.enqueued; r.rejected += b.rejected; r.dropped += b.dropped
        r.handled += b.handled; r.failed += b.failed; r.pending += b.pending
        return r
    }

    /// "enqueued 10 (handled 9, pending 1), rejected 0, dropped 0, failed 0"
    public var description: String {
        "enqueued \(enqueued) (handled \(handled), pending \(pending)), rejected \(rejected), dropped \(dropped), failed \(failed)"
    }
}

/// A worker loop's own counters.
public struct WorkerStats: Sendable, Hashable {
    /// Scheduler rounds completed.
    public var rounds: UInt64
    /// Batches dispatched (C→Swift calls).
    public var batches: UInt64
    /// Times the worker slept in the kernel.
    public var sleeps: UInt64
    /// Wake syscalls this worker made for other workers.
    public var wakeupsSent: UInt64
    /// Batches slower than the configuration's `slowBatchThreshold`.
    public var slowBatches: UInt64
    /// SPSC rings this worker created on first use as a producer.
    public var pairsCreated: UInt64
    /// Wake syscalls foreign threads made for this worker.
    public var foreignWakeups: UInt64
    /// The sleep flag at the time of reading: the worker is asleep (or about to be) and no producer
    /// has woken it yet. A worker that stays `isSleeping` while its lanes hold events has lost a
    /// wake-up.
    public var isSleeping: Bool

    init(_ s: sp_worker_stats, foreignWakeups: UInt64) {
        rounds = s.rounds; batches = s.batches; sleeps = s.sleeps; wakeupsSent = s.wakeups_sent
        slowBatches = s.slow_batches; pairsCreated = s.pairs_created; self.foreignWakeups = foreignWakeups
        isSleeping = s.sleeping != 0
    }
}

/// What shutdown left: per worker and lane, the final counts; `pending` there is what was never
/// handled (its boxes are released when the engine is freed).
public struct ShutdownReport: Sendable, Hashable, CustomStringConvertible {
    /// Lane names, by index.
    public let laneNames: [String]
    /// `perWorker[w][l]`: final counts of worker `w`, lane `l`.
    public let perWorker: [[LaneStats]]

    /// Events never handled, per lane, summed over workers.
    public var unhandled: [Int] {
        laneNames.indices.map { l in perWorker.reduce(0) { $0 + Int($1[l].pending) } }
    }
    /// True when every lane drained before the deadline.
    public var drained: Bool { unhandled.allSatisfy { $0 == 0 } }
    /// Totals per lane.
    public var totals: [LaneStats] {
        laneNames.indices.map { l in perWorker.reduce(LaneStats()) { $0 + $1[l] } }
    }

    /// "drained" or "not handled: bulk 120, normal 3"
    public var description: String {
        if drained { return "drained: every lane empty" }
        let parts = zip(laneNames, unhandled).filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }
        return "not handled: " + parts.joined(separator: ", ")
    }
}
