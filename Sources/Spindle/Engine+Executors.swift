import CSpindle

extension Engine {
    /// The executor that runs async code on `worker`'s thread, scheduled as `lane`: pinned *and* at a
    /// priority. One per (worker, lane), made at start; every call returns the same object.
    ///
    /// ```swift
    /// let exec = try engine.executor(worker: WorkerID(1), lane: critical)
    /// let answer = await Task(executorPreference: exec) { await compute() }.value
    /// actor Book { nonisolated var unownedExecutor: UnownedSerialExecutor { exec.asUnownedSerialExecutor() } }
    /// ```
    ///
    /// See ``WorkerExecutor`` for what keeps the preference, full lanes, and shutdown.
    /// - Throws: ``SpindleError/Code/invalidConfiguration`` for a worker or lane this engine lacks.
    public func executor(worker: WorkerID, lane: Lane) throws(SpindleError) -> WorkerExecutor {
        try _checkExecutor(worker, lane)
        return core.jobs!.executor(worker: worker.rawValue, lane: lane.index)
    }

    /// The executor of `worker` that picks each job's lane from its priority
    /// (``WorkerExecutor/lane(for:laneCount:)``: `high` → lane 0 … `background` → the last lane).
    /// - Throws: ``SpindleError/Code/invalidConfiguration`` for a worker this engine lacks.
    public func executor(worker: WorkerID) throws(SpindleError) -> WorkerExecutor {
        try _checkExecutor(worker, nil)
        return core.jobs!.executor(worker: worker.rawValue, lane: nil)
    }

    private func _checkExecutor(_ worker: WorkerID, _ lane: Lane?) throws(SpindleError) {
        guard worker.rawValue >= 0 && worker.rawValue < workerCount else {
            throw SpindleError(
                .invalidConfiguration, "no worker \(worker.rawValue): this engine has workers 0..<\(workerCount)")
        }
        if let lane, lane.index < 0 || lane.index >= configuration.lanes.count {
            throw SpindleError(
                .invalidConfiguration,
                "no lane \(lane.index): this engine has lanes 0..<\(configuration.lanes.count) (\(core.laneNames.joined(separator: ", ")))"
            )
        }
    }
}
