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
    /// The metrics of one worker's loop.
    struct WorkerMetrics {
        let batches, slowBatches, sleeps, wakeups: Counter
        var last: (batches: UInt64, slow: UInt64, sleeps: UInt64, wakeups: UInt64) = (0, 0, 0, 0)
    }

    private let lock = NSLock()
    private let engine: Engine
    private var lanes: [LaneMetrics]  // [worker * laneCount + lane]
    private var workers: [WorkerMetrics]
    private let laneCount: Int

    init(engine: Engine, prefix: String, factory: any MetricsFactory) {
        self.engine = engine
        let names = engine.configuration.lanes.map(\.name)
        laneCount = names.count
        func counter(_ name: String, _ dims: [(String, String)]) -> Counter {
            Counter(label: "\(prefix)_\(name)", dimensions: dims, factory: factory)
        }
        var lanes: [LaneMetrics] = []
        var workers: [WorkerMetrics] = []
        for w in 0..<engine.workerCount {
            for name in names {
                let dims = [("worker", "\(w)"), ("lane", name)]
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
    }

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
