import CoreMetrics
import Foundation
import Spindle

/// The metrics of one engine and the counts its last sample saw. One sample at a time (a pthread
/// mutex, which ThreadSanitizer sees); never touched by a worker.
final class Sampler: @unchecked Sendable {
    /// The metrics of one (worker, lane).
    struct LaneMetrics {
        let enqueued, rejected, dropped, handled, failed: Counter
        let depth: Gauge
        var last = LaneStats()
    }
    /// The timers of one (worker, lane).
    struct LaneTimers {
        let batch, latency: CoreMetrics.Timer
        let batchLost, latencyLost: Counter
        var last = (batchLost: UInt64(0), latencyLost: UInt64(0))
    }
    /// The metrics of one worker's loop.
    struct WorkerMetrics {
        let batches, slowBatches, sleeps, wakeups: Counter
        var last: (batches: UInt64, slow: UInt64, sleeps: UInt64, wakeups: UInt64) = (0, 0, 0, 0)
    }

    private let lock = NSLock()
    private let engine: Engine
    private var lanes: [LaneMetrics]  // [worker * laneCount + lane]
    private var workers: [WorkerMetrics]
    private var timers: [LaneTimers]  // [worker * laneCount + lane]; empty when off
    /// Where a drain puts durations before they are recorded (allocated once).
    private let drained: UnsafeMutableBufferPointer<UInt64>
    private let laneCount: Int

    init(engine: Engine, prefix: String, factory: any MetricsFactory, timers timed: Bool) {
        self.engine = engine
        let names = engine.configuration.lanes.map(\.name)
        laneCount = names.count
        func counter(_ name: String, _ dims: [(String, String)]) -> Counter {
            Counter(label: "\(prefix)_\(name)", dimensions: dims, factory: factory)
        }
        var lanes: [LaneMetrics] = []
        var workers: [WorkerMetrics] = []
        var timers: [LaneTimers] = []
        for w in 0..<engine.workerCount {
            for name in names {
                let dims = [("worker", "\(w)"), ("lane", name)]
                if timed {
                    timers.append(
                        LaneTimers(
                            batch: CoreMetrics.Timer(label: "\(prefix)_batch_duration_seconds", dimensions: dims, factory: factory),
                            latency: CoreMetrics.Timer(label: "\(prefix)_queue_latency_seconds", dimensions: dims, factory: factory),
                            batchLost: counter("timer_durations_lost_total", dims + [("timer", "batch")]),
                            latencyLost: counter("timer_durations_lost_total", dims + [("timer", "latency")])))
                }
                lanes.append(
                    LaneMetrics(
                        enqueued: counter("events_enqueued_total", dims),
                        rejected: counter("events_rejected_total", dims),
                        dropped: counter("events_dropped_total", dims), handled: counter("events_handled_total", dims),
                        failed: counter("events_failed_total", dims),
                        depth: Gauge(label: "\(prefix)_lane_depth", dimensions: dims, factory: factory)))
            }
            let dims = [("worker", "\(w)")]
            workers.append(
                WorkerMetrics(
                    batches: counter("worker_batches_total", dims),
                    slowBatches: counter("worker_slow_batches_total", dims),
                    sleeps: counter("worker_sleeps_total", dims), wakeups: counter("worker_wakeups_total", dims)))
        }
        self.lanes = lanes
        self.workers = workers
        self.timers = timers
        drained = .allocate(capacity: 256)
    }

    deinit { drained.deallocate() }

    /// Records every delta since the last sample; returns the workers whose first slow batch this
    /// sample saw.
    func sample() -> [Int] {
        lock.lock()
        defer { lock.unlock() }
        var firstSlow: [Int] = []
        for w in 0..<workers.count {
            for l in 0..<laneCount {
                let now = engine.stats(worker: WorkerID(w), lane: Lane(index: l))
                let i = w * laneCount + l
                let m = lanes[i]
                add(m.enqueued, now.enqueued, m.last.enqueued)
                add(m.rejected, now.rejected, m.last.rejected)
                add(m.dropped, now.dropped, m.last.dropped)
                add(m.handled, now.handled, m.last.handled)
                add(m.failed, now.failed, m.last.failed)
                m.depth.record(Int64(clamping: now.pending))
                lanes[i].last = LaneStats.max(m.last, now)
                if !timers.isEmpty { recordTimers(i, worker: WorkerID(w), lane: Lane(index: l)) }
            }
            let s = engine.workerStats(WorkerID(w))
            let m = workers[w]
            add(m.batches, s.batches, m.last.batches)
            add(m.slowBatches, s.slowBatches, m.last.slow)
            add(m.sleeps, s.sleeps, m.last.sleeps)
            add(m.wakeups, s.foreignWakeups, m.last.wakeups)
            if m.last.slow == 0 && s.slowBatches > 0 { firstSlow.append(w) }
            workers[w].last = (
                max(s.batches, m.last.batches), max(s.slowBatches, m.last.slow),
                max(s.sleeps, m.last.sleeps), max(s.foreignWakeups, m.last.wakeups)
            )
        }
        return firstSlow
    }

    /// One `recordNanoseconds` per duration the worker measured: real values, oldest first.
    private func recordTimers(_ i: Int, worker: WorkerID, lane: Lane) {
        let t = timers[i]
        func drain(_ kind: TimingKind, _ timer: CoreMetrics.Timer) {
            while true {
                let n = engine._drainTiming(worker: worker, lane: lane, kind, into: drained)
                for k in 0..<n { timer.recordNanoseconds(Int64(clamping: drained[k])) }
                if n < drained.count { return }
            }
        }
        drain(.batch, t.batch)
        drain(.latency, t.latency)
        let s = engine._timingStats(worker: worker, lane: lane)
        add(t.batchLost, s.batchesLost, t.last.batchLost)
        add(t.latencyLost, s.latenciesLost, t.last.latencyLost)
        timers[i].last = (max(s.batchesLost, t.last.batchLost), max(s.latenciesLost, t.last.latencyLost))
    }

    /// Counts only grow; a read that raced with a worker never goes back, so a smaller value is
    /// not recorded (and the next sample catches up).
    private func add(_ counter: Counter, _ now: UInt64, _ last: UInt64) {
        if now > last { counter.increment(by: Int64(clamping: now - last)) }
    }
}

extension LaneStats {
    /// Field by field, the larger count (what a sample has recorded so far).
    static func max(_ a: LaneStats, _ b: LaneStats) -> LaneStats {
        var r = LaneStats()
        r.enqueued = Swift.max(a.enqueued, b.enqueued)
        r.rejected = Swift.max(a.rejected, b.rejected)
        r.dropped = Swift.max(a.dropped, b.dropped)
        r.handled = Swift.max(a.handled, b.handled)
        r.failed = Swift.max(a.failed, b.failed)
        r.pending = b.pending
        return r
    }
}
