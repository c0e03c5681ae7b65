import CoreMetrics
import Foundation
import Logging
import Spindle

/// Publishes an engine's counts to swift-metrics, per (worker, lane) and per worker, from a sampler
/// that runs off the hot path.
///
/// The engine counts in per-worker counters and ring indices, never one shared atomic per event.
/// A sample reads them (a few atomic loads per (worker, lane)), records what grew since the last
/// sample into the metrics' counters, and sets the depth gauges. Nothing runs on a worker; an event
/// costs the same with or without metrics. Without a metrics backend (the swift-metrics default, a
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
/// The engine measures no per-batch time or per-event queueing latency on its hot path, so there
/// are no timers; `slow_batches_total` is the batch-time signal it has.
public final class EngineMetrics: Sendable {
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
    ///   - factory: creates the counters and gauges; swift-metrics' no-op factory disables everything.
    ///   - logger: gets one warning per worker the first time a sample sees a slow batch there
    ///     (metadata `spindle.worker`); by default nothing is logged.
    public init(
        engine: Engine, interval: Duration = .seconds(1), prefix: String = "spindle",
        factory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger = Logger(label: "spindle", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.engine = engine
        self.interval = max(interval, .milliseconds(1))
        self.logger = logger
        self.isEnabled = !(factory is NOOPMetricsHandler)
        self.sampler = isEnabled ? Sampler(engine: engine, prefix: prefix, factory: factory) : nil
    }

    /// Takes one sample now: records what every counter gained since the last sample and sets
    /// the depth gauges. Cheap (atomic loads, no lock on the engine's side); callable from any
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
