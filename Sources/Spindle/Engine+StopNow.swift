import CSpindle

extension Engine {
    /// Stops the engine now, without draining: foreign posts get ``PostError/Code/stopped`` from
    /// now on and every worker exits after the batch in progress, as when a shutdown's deadline
    /// passes. A ``shutdown(deadline:)`` in progress returns as soon as the workers have exited; a
    /// later one returns at once. Either reports what was left as unhandled. Never blocks;
    /// callable from any thread (a worker's too); idempotent. Wraps `sp_engine_abort`.
    ///
    /// Use it when a drain started with a generous deadline must end sooner — a second signal, or
    /// a task that was cancelled:
    ///
    /// ```swift
    /// let report = await withTaskCancellationHandler {
    ///     await engine.shutdown(deadline: .now + .seconds(30))
    /// } onCancel: {
    ///     engine.stopNow()
    /// }
    /// ```
    public func stopNow() {
        sp_engine_abort(handle)
    }
}
