import CSpindle

/// A handler that has run past the configuration's ``Engine/Configuration/slowBatchThreshold`` and
/// has not returned yet, as the engine's watchdog saw it. The engine goes on (handlers are
/// cooperative: it cannot stop one); the batch is also counted in ``WorkerStats/slowBatches`` when
/// it ends.
///
/// ```
/// worker 1, lane bulk: an event of Quote has been running for 52 ms (past the slow-batch threshold)
/// ```
public struct SlowHandlerReport: Sendable, Hashable, CustomStringConvertible {
    /// The worker whose handler is stalled.
    public var worker: WorkerID
    /// The lane of the batch in progress.
    public var lane: Lane
    /// That lane's name.
    public var laneName: String
    /// The type of the batch's first event (the handler running is this one's, or a later event's
    /// in the same batch).
    public var eventType: String
    /// Events in the batch.
    public var batchSize: Int
    /// How long the batch had been running when the watchdog looked (coarse clock: ± a few ms).
    public var running: Duration

    /// "worker 1, lane bulk: an event of Quote has been running for 52 ms (past the slow-batch threshold)"
    public var description: String {
        let ms = Double(running.components.seconds) * 1e3 + Double(running.components.attoseconds) / 1e15
        let what = batchSize == 1 ? "an event of \(eventType)" : "a batch of \(batchSize) events from \(eventType) on"
        return "worker \(worker.rawValue), lane \(laneName): \(what) has been running for \(Int(ms)) ms (past the slow-batch threshold)"
    }
}

extension Engine.Builder {
    /// Called by the engine's watchdog, on its own thread, when a batch has run past
    /// ``Engine/Configuration/slowBatchThreshold`` and is still running — once per such batch. By
    /// default the report is logged as a warning. The watchdog wakes about once per threshold
    /// (10 ms to 1 s apart) while some worker is awake, so a stall is reported within about two
    /// thresholds of its start; while every worker sleeps it does not wake at all (the first
    /// worker to wake brings it back); with no threshold (`nil`) it does nothing.
    ///
    /// ```swift
    /// builder.onSlowHandler { report in metrics.stalls.increment(); log.warning("\(report)") }
    /// ```
    public mutating func onSlowHandler(_ hook: @escaping @Sendable (SlowHandlerReport) -> Void) {
        stallHook = hook
    }
}

extension EngineCore {
    /// From the watchdog thread (C): names the kind and the lane, then calls the hook.
    func stalled(worker: Int, lane: Int, kind: Int, count: Int, ns: UInt64) {
        guard let hook = stallHook else { return }
        hook(SlowHandlerReport(
            worker: WorkerID(worker), lane: Lane(index: lane),
            laneName: lane < laneNames.count ? laneNames[lane] : "lane \(lane)",
            eventType: kind < entries.count ? entries[kind].typeName : "kind \(kind)", batchSize: count,
            running: .nanoseconds(Int64(clamping: ns))))
    }
}
