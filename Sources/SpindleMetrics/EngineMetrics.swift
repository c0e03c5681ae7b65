import CoreMetrics
import Foundation
import Logging
import Spindle

/// Publishes an engine's counts to swift-metrics, per (worker, lane) and per worker, from a sampler
/// that runs off the hot path.
///
/// The engine counts in per-worker counters and ring indices, never one shared atomic per event.
/// A sample reads them (a few atomic loads per (worker, lane)), records what grew since the last
/// sample into the metrics' counters, and sets the depth gauges. For the counters and gauges nothing
/// runs on a worker: an event costs the same with or without them (the opt-in ``Timers`` read the
/// clock per batch and per sampled post). Without a metrics backend (the swift-metrics default, a
/// no-op factory) ``isEnabled`` is `false`, no metric is created and ``run()`` returns at once.
///
/// ```swift
/// let metrics = EngineMetrics(engine: engine, interval: .seconds(1))  // MetricsSystem.factory
/// let sampler = Task { await metrics.run() }                          // until cancelled
/// …
/// sampler.cancel()                                                    // takes a last sample
/// ```
///
/// Metrics (labels as given, prefixed by `prefix`, default `spindle`), each with dimensions
/// `worker` (0-based id) and, for lane metrics, `lane` (the lane's name):
///
/// | label | kind | what |
/// | --- | --- | --- |
/// | `spindle_events_enqueued_total` | counter | accepted into a ring |
/// | `spindle_events_rejected_total` | counter | the post threw (full lane, stopped) |
/// | `spindle_events_dropped_total` | counter | discarded by a `drop` lane |
/// | `spindle_events_handled_total` | counter | handler returned or threw |
/// | `spindle_events_failed_total` | counter | handler threw (also in handled) |
/// | `spindle_lane_depth` | gauge | events in the lane's rings now |
/// | `spindle_worker_batches_total` | counter | batches dispatched |
/// | `spindle_worker_slow_batches_total` | counter | batches over `slowBatchThreshold` |
/// | `spindle_worker_sleeps_total` | counter | times the worker slept in the kernel |
/// | `spindle_worker_wakeups_total` | counter | wake-ups the worker received from other threads |
///
/// With ``Timers`` (`timers:`, off by default), per (worker, lane) also:
///
/// | label | kind | what |
/// | --- | --- | --- |
/// | `spindle_batch_duration_seconds` | timer | each batch: from just before its first handler call to just after its last return |
/// | `spindle_queue_latency_seconds` | timer | one event in 2^k per ring: from its enqueue to the start of the batch that handled it |
/// | `spindle_timer_durations_lost_total` | counter | durations measured but not recorded (dimension `timer`: `batch` or `latency`): the sampler fell behind |
///
/// Every value a timer receives is one measured duration (`recordNanoseconds`, one call per
/// duration), never a bucket's bound. See ``Timers`` for the sampling rule and the cost.
public final class EngineMetrics: Sendable {
    /// Batch-time and queueing-latency timers: what turning them on costs and which events are
    /// sampled.
    ///
    /// On, each worker reads `CLOCK_MONOTONIC` (vDSO, no syscall) twice per batch, and one post in
    /// 2^``latencySampleShift`` per ring reads it once more and writes an enqueue stamp (into its
    /// slot, or a cell beside a foreign-thread ring). The rule is arithmetic on ring positions:
    /// the post at position `p` of a ring (counted from the ring's first post; a ring is one
    /// (producer, worker, lane)) is sampled when `(p + 1) % 2^k == 0` — the 2^k-th, 2·2^k-th, …
    /// post. After a batch the worker looks only at the sampled positions it handled, so nothing is
    /// tested per event. Durations wait in a 256-entry buffer per (worker, lane, timer) for the
    /// sampler; when it is full the newest are counted in `spindle_timer_durations_lost_total`, so
    /// a timer holds the first 256 durations of each interval: sample more often (a shorter
    /// `interval`) where a lane runs more batches than that.
    ///
    /// Off (`timers: nil`, the default, or no metrics backend): the engine is never told, and an
    /// event costs one predictable branch per post and per batch. Timing stays on for the
    /// engine's life once an `EngineMetrics` turned it on.
    public struct Timers: Sendable, Hashable {
        /// k: one post in 2^k per ring is sampled for queueing latency (0 samples every post).
        public let latencySampleShift: Int
        /// 2^k: the sampling period in posts per ring.
        public var latencySamplePeriod: Int { 1 << latencySampleShift }

        /// Timers sampling one post in 2^`latencySampleShift` per ring.
        /// - Throws: `SpindleError` (`.invalidConfiguration`) unless the shift is in 0...20.
        public init(latencySampleShift: Int) throws(SpindleError) {
            guard (0...Engine.maxSampleShift).contains(latencySampleShift) else {
                throw SpindleError(
                    .invalidConfiguration,
                    "metrics.latency_sample_shift = \(latencySampleShift): rule 0...\(Engine.maxSampleShift) (one post in 2^shift per ring); fix: use 6 (one in 64)"
                )
            }
            self.latencySampleShift = latencySampleShift
        }

        /// One post in 64 per ring.
        public static let standard = try! Timers(latencySampleShift: 6)
    }

    /// The timers in force: `nil` when off (none asked for, no backend, or the engine refused).
    /// When the engine already had timing on with another shift, the engine's.
    public let timers: Timers?
    /// The engine sampled.
    public let engine: Engine
    /// Time between two samples in ``run()``.
    public let interval: Duration
    /// `false` when the factory is swift-metrics' no-op one: nothing is created, sampled or run.
    public let isEnabled: Bool
    private let logger: Logger
    private let sampler: Sampler?

    /// Metrics for `engine`, created with `factory` (by default the bootstrapped or task-local
    /// `MetricsSystem.factory`).
    /// - Parameters:
    ///   - engine: the engine to sample (kept alive by these metrics).
    ///   - interval: between samples in ``run()`` (default 1 s; at least 1 ms).
    ///   - prefix: the labels' first word (default `spindle`).
    ///   - timers: batch-time and queueing-latency timers (``Timers``); `nil` (the default) keeps
    ///     them off and the engine untouched.
    ///   - factory: creates the counters and gauges; swift-metrics' no-op factory disables everything.
    ///   - logger: gets one warning per worker the first time a sample sees a slow batch there
    ///     (metadata `spindle.worker`), and one if the engine could not turn timing on; by default
    ///     nothing is logged.
    public init(
        engine: Engine, interval: Duration = .seconds(1), prefix: String = "spindle", timers: Timers? = nil,
        factory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger = Logger(label: "spindle", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.engine = engine
        self.interval = max(interval, .milliseconds(1))
        self.logger = logger
        self.isEnabled = !(factory is NOOPMetricsHandler)
        var inForce: Timers? = nil
        if isEnabled, let timers {
            do {
                let shift = try engine._enableTiming(sampleShift: timers.latencySampleShift)
                inForce = try Timers(latencySampleShift: shift)
            } catch {
                logger.warning("timers off: \(error)")
            }
        }
        self.timers = inForce
        self.sampler =
            isEnabled ? Sampler(engine: engine, prefix: prefix, factory: factory, timers: inForce != nil) : nil
    }

    /// Takes one sample now: records what every counter gained since the last sample, sets
    /// the depth gauges, and records every duration the timers buffered since. Cheap (atomic loads, no lock on the engine's side); callable from any
    /// thread, though ``run()`` is the usual caller. After the engine has stopped, one more
    /// sample publishes its final counts.
    public func sample() {
        guard let sampler else { return }
        for worker in sampler.sample() {
            logger.warning(
                "slow batches: a handler ran longer than the slow-batch threshold",
                metadata: [
                    "spindle.worker": "\(worker)",
                    "spindle.slowBatchThreshold": "\(engine.configuration.slowBatchThreshold.map { "\($0)" } ?? "off")",
                ])
        }
    }

    /// Samples every ``interval`` until the task is cancelled, then takes a last sample and
    /// returns. Returns at once when ``isEnabled`` is `false`. Sleeps between samples (no thread is
    /// held).
    public func run() async {
        guard isEnabled else { return }
        while !Task.isCancelled {
            sample()
            try? await Task.sleep(for: interval)
        }
        sample()
    }
}
