import CSpindle

extension Engine {
    /// The pauses of `send(_:as:lane:to:)` between two tries on a full lane: from
    /// 50 µs, doubling, capped at 1 ms.
    static let sendPauses: (first: Duration, cap: Duration) = (.microseconds(50), .milliseconds(1))

    /// Posts an inline event, waiting for room while the lane is full instead of failing: for async
    /// callers that would rather slow down than drop.
    ///
    /// Each try is a `post(_:as:lane:to:)`; on ``PostError/Code/laneFull`` the task
    /// sleeps (`Task.sleep`, so no thread is held: 50 µs, doubling, capped at 1 ms) and tries again.
    /// The worker's hot path pays nothing for it. Every call ends as exactly one of: enqueued (or
    /// dropped by a `drop` lane, the returned ``PostResult``), or thrown — never half.
    ///
    /// ```swift
    /// try await engine.send(Tick(seq: 1), as: ticks, lane: bulk, to: .worker(WorkerID(0)))
    /// ```
    /// - Throws: `CancellationError` when the task is cancelled before the event got in;
    ///   ``SpindleError/Code/onWorkerThread`` when a try would run on one of this engine's workers
    ///   (a worker never waits: post from there with `WorkerContext.post(_:as:lane:to:)`
    ///   or `Engine.post(_:as:lane:to:)`, which fail fast); ``PostError`` for any other refusal
    ///   (`stopped`, `noSuchWorker`, `timedOut` on a `block` lane, where the post itself waits).
    @discardableResult
    public func send<E: InlineEvent>(_ event: E, as kind: EventKind<E>, lane: Lane, to destination: Destination)
        async throws -> PostResult
    {
        try await _retryWhileFull { () throws(PostError) in try post(event, as: kind, lane: lane, to: destination) }
    }

    /// `send(_:as:lane:to:)` for a boxed event (each try allocates its box; a refused
    /// try releases it).
    @discardableResult
    public func send<E: Event>(_ event: E, as kind: EventKind<E>, lane: Lane, to destination: Destination)
        async throws -> PostResult
    {
        try await _retryWhileFull { () throws(PostError) in try post(event, as: kind, lane: lane, to: destination) }
    }

    /// Tries `attempt` until it is not refused for a full lane, pausing between tries (50 µs,
    /// doubling to 1 ms); checks cancellation and the thread before each try.
    func _retryWhileFull(_ attempt: () throws(PostError) -> PostResult) async throws -> PostResult {
        var pause = Self.sendPauses.first
        while true {
            try _checkSend()
            do throws(PostError) {
                return try attempt()
            } catch {
                if error.code != .laneFull { throw error }
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, Self.sendPauses.cap)
        }
    }

    /// Before each try: not cancelled, not on a worker of this engine.
    private func _checkSend() throws {
        try Task.checkCancellation()
        if let w = sp_current_worker(handle) {
            throw SpindleError(
                .onWorkerThread,
                "send would wait on worker \(sp_worker_id(w)) of this engine, and a worker never waits: use post (it fails fast with laneFull) or run the sender on another executor"
            )
        }
    }
}
