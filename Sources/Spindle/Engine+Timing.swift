import CSpindle

/// Counts of one (worker, lane)'s timers (see ``Engine/_enableTiming(sampleShift:)``).
package struct TimingStats: Sendable, Hashable {
    /// The worker has taken timing: its batches are timed from then on.
    package var active: Bool
    /// Batches timed (buffered for the sampler, or lost).
    package var batches: UInt64
    /// Batches timed while the buffer was full (the sampler fell behind): not drained.
    package var batchesLost: UInt64
    /// Sampled events whose queueing latency was measured (buffered, or lost).
    package var latencies: UInt64
    /// Latencies measured while the buffer was full: not drained.
    package var latenciesLost: UInt64
    /// Sampled positions without a stamp (their producer had not yet seen timing turned on).
    package var latenciesMissed: UInt64

    init(_ s: sp_timing_stats) {
        active = s.active != 0
        batches = s.batches; batchesLost = s.batches_lost
        latencies = s.latencies; latenciesLost = s.latencies_lost; latenciesMissed = s.latencies_missed
    }
}

/// Which of a (worker, lane)'s two timers.
package enum TimingKind: UInt32, Sendable {
    /// How long each batch's handlers took.
    case batch = 0
    /// From a sampled event's enqueue to the start of the batch that handled it.
    case latency = 1
}

extension Engine {
    /// The largest sample shift: one post in 2^20 per ring.
    package static let maxSampleShift = Int(SP_SAMPLE_SHIFT_MAX)

    /// Turns timing on for the engine's life (`sp_engine_enable_timing`): every batch is timed,
    /// and one post in `2^sampleShift` per ring carries an enqueue stamp. Idempotent with the same
    /// shift; the engine's shift wins otherwise (returned).
    /// - Returns: the shift timing runs with.
    /// - Throws: ``SpindleError/Code/invalidConfiguration`` (shift out of range),
    ///   ``SpindleError/Code/onWorkerThread``, or ``SpindleError/Code/startFailed`` (no memory).
    @discardableResult
    package func _enableTiming(sampleShift: Int) throws(SpindleError) -> Int {
        guard (0...Self.maxSampleShift).contains(sampleShift) else {
            throw SpindleError(
                .invalidConfiguration,
                "metrics.latency_sample_shift = \(sampleShift): rule 0...\(Self.maxSampleShift) (one post in 2^shift per ring); fix: use 6 (one in 64)"
            )
        }
        let rc = sp_engine_enable_timing(handle, UInt32(sampleShift))
        if rc == SP_OK.rawValue { return sampleShift }
        if rc == SP_EINVAL.rawValue, let running = _timingSampleShift { return running }
        if rc == SP_EWORKER_THREAD.rawValue {
            throw SpindleError(.onWorkerThread, "timing cannot be turned on from a worker thread; fix: create EngineMetrics outside handlers")
        }
        throw SpindleError(.startFailed, "timing: \(String(cString: sp_strerror(rc)))")
    }

    /// The sample shift timing runs with, or `nil` while it is off.
    package var _timingSampleShift: Int? {
        let s = sp_engine_timing_shift(handle)
        return s < 0 ? nil : Int(s)
    }

    /// Counts of (worker, lane)'s timers; zeros while timing is off.
    package func _timingStats(worker: WorkerID, lane: Lane) -> TimingStats {
        var s = sp_timing_stats()
        _ = sp_engine_timing_stats(handle, UInt32(worker.rawValue), UInt32(lane.index), &s)
        return TimingStats(s)
    }

    /// Moves buffered durations (ns, oldest first) of one timer into `buffer`; returns how many.
    package func _drainTiming(worker: WorkerID, lane: Lane, _ kind: TimingKind, into buffer: UnsafeMutableBufferPointer<UInt64>)
        -> Int
    {
        guard let base = buffer.baseAddress else { return 0 }
        return Int(
            sp_engine_timing_drain(
                handle, UInt32(worker.rawValue), UInt32(lane.index), kind.rawValue, base, UInt32(clamping: buffer.count)))
    }

    /// How many events pending in (worker, lane) of a manual engine carry an enqueue stamp.
    package func _pendingStamps(worker: Int, lane: Int) -> Int {
        precondition(_isManual, "stamps can be counted only on a test engine")
        return Int(sp_manual_lane_stamps(handle, UInt32(worker), UInt32(lane)))
    }
}
